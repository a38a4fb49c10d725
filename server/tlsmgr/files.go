package tlsmgr

import (
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"time"
)

// provisionFiles loads the operator's pair and starts watching the files.
// An unusable pair at start is an error: there is nothing else to serve.
func (m *Manager) provisionFiles() error {
	if m.cfg.CertFile == "" || m.cfg.KeyFile == "" {
		return errors.New("tls mode files: give both the certificate and the key file")
	}
	m.reloadMu.Lock()
	err := m.loadFiles()
	m.reloadMu.Unlock()
	if err != nil {
		return err
	}
	m.wg.Add(1)
	go m.watchFiles()
	return nil
}

// Reload re-reads the certificate and key files (files mode; the node calls
// it on SIGHUP). An unusable new pair (unreadable, mismatched, expired)
// leaves the current one in service; the error is returned and shown in
// Status until a good pair is loaded. In other modes Reload does nothing.
func (m *Manager) Reload() error {
	if m.mode != ModeFiles {
		return nil
	}
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	return m.loadFiles()
}

// loadFiles reads and installs the pair. The caller holds reloadMu.
func (m *Manager) loadFiles() error {
	certPEM, keyPEM, err := m.readFiles()
	if err != nil {
		return m.filesFailed(err)
	}
	m.filesSeen = string(certPEM) + "\x00" + string(keyPEM)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return m.filesFailed(fmt.Errorf("certificate %s and key %s: %w", m.cfg.CertFile, m.cfg.KeyFile, err))
	}
	leaf := pair.Leaf
	if now := m.now(); now.After(leaf.NotAfter) {
		return m.filesFailed(fmt.Errorf("certificate %s expired on %s", m.cfg.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339)))
	}
	m.cert.Store(&pair)
	m.clearError(filesErrorKey)
	m.log.Info("loaded certificate files", "cert_file", m.cfg.CertFile, "names", certNames(leaf),
		"issuer", leaf.Issuer.CommonName, "not_after", leaf.NotAfter, "serial", leaf.SerialNumber.Text(16))
	return nil
}

func (m *Manager) readFiles() (certPEM, keyPEM []byte, err error) {
	certPEM, err = os.ReadFile(m.cfg.CertFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err = os.ReadFile(m.cfg.KeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("read key: %w", err)
	}
	return certPEM, keyPEM, nil
}

// filesFailed records err in Status, logs it once per distinct message and
// returns it. The served pair, if any, is kept.
func (m *Manager) filesFailed(err error) error {
	keeping := ""
	if m.cert.Load() != nil {
		keeping = "; still serving the previous certificate"
	}
	err = fmt.Errorf("tls files: %w", err)
	if m.setError(filesErrorKey, err.Error()+keeping) {
		m.log.Error("certificate files not loaded", "err", err, "keeping_previous", keeping != "")
	}
	return err
}

// watchFiles reloads the pair when the files' contents change. It compares
// contents rather than modification times: the files are small, and a
// rewrite within the file system's time granularity is not missed.
func (m *Manager) watchFiles() {
	defer m.wg.Done()
	t := time.NewTicker(m.cfg.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		m.reloadMu.Lock()
		certPEM, keyPEM, err := m.readFiles()
		switch {
		case err != nil:
			// Often a replacement in progress: recorded, and the files are
			// loaded again once readable, even with unchanged contents.
			m.filesFailed(err)
			m.filesSeen = ""
		case string(certPEM)+"\x00"+string(keyPEM) != m.filesSeen:
			m.loadFiles()
		default:
			if c := m.cert.Load(); c != nil && m.now().After(c.Leaf.NotAfter) {
				m.filesFailed(fmt.Errorf("certificate %s expired on %s: replace the files",
					m.cfg.CertFile, c.Leaf.NotAfter.UTC().Format(time.RFC3339)))
			}
		}
		m.reloadMu.Unlock()
	}
}
