package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nkeys"
)

// loadLinkCert returns the node's link certificate, kept in
// dataDir/fed/link.{crt,key}, creating a self-signed one on first use,
// and its SPKI pin. Peers pin the key, so the certificate never needs a
// CA nor a renewal for its validity dates to matter.
func loadLinkCert(dataDir string) (tls.Certificate, string, error) {
	dir := filepath.Join(dataDir, "fed")
	crtPath, keyPath := filepath.Join(dir, "link.crt"), filepath.Join(dir, "link.key")
	cert, err := tls.LoadX509KeyPair(crtPath, keyPath)
	if errors.Is(err, os.ErrNotExist) {
		if err := makeLinkCert(dir, crtPath, keyPath); err != nil {
			return tls.Certificate{}, "", err
		}
		cert, err = tls.LoadX509KeyPair(crtPath, keyPath)
	}
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("cluster: federation link certificate: %w", err)
	}
	pin, err := spkiPin(cert.Certificate[0])
	if err != nil {
		return tls.Certificate{}, "", fmt.Errorf("cluster: federation link certificate: %w", err)
	}
	return cert, pin, nil
}

func makeLinkCert(dir, crtPath, keyPath string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: federation: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("cluster: federation: generate link key: %w", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: "relais federation link"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(30, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("cluster: federation: link certificate: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("cluster: federation: link key: %w", err)
	}
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})); err != nil {
		return err
	}
	return writeFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// loadNkey returns the node's NATS user seed and public key, kept in
// dataDir/fed/nats.nk. It signs only NATS handshake nonces: the event key
// is another one.
func loadNkey(dataDir string) (seed, pub string, err error) {
	path := filepath.Join(dataDir, "fed", "nats.nk")
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		kp, kerr := nkeys.CreateUser()
		if kerr != nil {
			return "", "", fmt.Errorf("cluster: federation: nkey: %w", kerr)
		}
		if b, err = kp.Seed(); err != nil {
			return "", "", fmt.Errorf("cluster: federation: nkey: %w", err)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", "", fmt.Errorf("cluster: federation: %w", err)
		}
		err = writeFile(path, b)
	}
	if err != nil {
		return "", "", fmt.Errorf("cluster: federation nkey: %w", err)
	}
	kp, err := nkeys.FromSeed(b)
	if err != nil {
		return "", "", fmt.Errorf("cluster: federation nkey %s: %w", path, err)
	}
	if pub, err = kp.PublicKey(); err != nil {
		return "", "", fmt.Errorf("cluster: federation nkey: %w", err)
	}
	return string(b), pub, nil
}

func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("cluster: federation: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cluster: federation: %w", err)
	}
	return nil
}
