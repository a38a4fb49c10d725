// Package mail sends the node's e-mail: address verification codes,
// password resets, renewals and invitations.
//
// A [Sender] delivers one [Message]; [SMTP] implements it through the
// operator's SMTP relay with net/smtp, and [Templates] builds the bilingual
// (French, then English) messages of the account flows. Messages are plain
// text in UTF-8, sent quoted-printable with RFC 5322 headers; header values
// are checked so that no input can inject a header or a recipient.
//
// The package server/mail/smtptest provides an in-process SMTP server for
// tests.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"relais/server/mailaddr"
)

// Message is one plain-text e-mail to one recipient.
type Message struct {
	// To is the recipient's address, bare (jean.dupont@elysee.fr, no
	// display name). It must pass mailaddr.Parse; the canonical form is
	// used.
	To string
	// Subject is one line of UTF-8 text, at most MaxSubject characters,
	// without control characters. Non-ASCII subjects are sent as RFC 2047
	// encoded words.
	Subject string
	// Text is the UTF-8 body. Line endings may be LF or CRLF.
	Text string
}

// Limits on messages.
const (
	MaxSubject = 200       // characters
	MaxText    = 256 << 10 // bytes
)

// ErrInvalidMessage is wrapped by the errors about a Message that cannot be
// sent as given (bad recipient, header injection, invalid UTF-8, too
// large). Retrying such a message is pointless.
var ErrInvalidMessage = errors.New("mail: invalid message")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMessage}, args...)...)
}

// Sender sends e-mail.
//
// Send delivers m to its recipient, or to the relay that will deliver it,
// and returns nil only once the message has been accepted (for SMTP: the
// relay answered 250 to the end of DATA). It validates m first and returns
// an error wrapping ErrInvalidMessage, without contacting anyone, if m
// cannot be sent as given. It makes one attempt and does not retry; the
// caller decides what to retry. It returns promptly when ctx is done, with
// an error wrapping ctx.Err(). Implementations are safe for concurrent use.
// Errors may name the relay but never contain the message body; they may
// contain the recipient's address, so callers must not log them at info
// level.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Validate checks m as Send does and returns the canonical recipient.
func (m Message) Validate() (mailaddr.Address, error) {
	to, err := mailaddr.Parse(m.To)
	if err != nil {
		return mailaddr.Address{}, invalidf("recipient: %v", err)
	}
	if err := checkHeader(m.Subject, MaxSubject); err != nil {
		return mailaddr.Address{}, invalidf("subject: %v", err)
	}
	if len(m.Text) > MaxText {
		return mailaddr.Address{}, invalidf("text longer than %d bytes", MaxText)
	}
	if !utf8.ValidString(m.Text) {
		return mailaddr.Address{}, invalidf("text is not valid UTF-8")
	}
	return to, nil
}

// checkHeader refuses header values that could end the header line or
// smuggle anything into it.
func checkHeader(s string, max int) error {
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	if utf8.RuneCountInString(s) > max {
		return fmt.Errorf("longer than %d characters", max)
	}
	for _, r := range s {
		if r == '\r' || r == '\n' {
			return errors.New("contains a line break")
		}
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// sender is a checked From: a strict address and an optional display name.
type sender struct {
	name string
	addr mailaddr.Address
}

// parseFrom parses "addr" or "Name <addr>" (RFC 5322), then checks the
// address with mailaddr.Parse and the name as a header value.
func parseFrom(s string) (sender, error) {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return sender{}, err
	}
	addr, err := mailaddr.Parse(a.Address)
	if err != nil {
		return sender{}, err
	}
	if err := checkHeader(a.Name, MaxSubject); err != nil {
		return sender{}, fmt.Errorf("display name: %w", err)
	}
	return sender{name: a.Name, addr: addr}, nil
}

// build returns the RFC 5322 message, with CRLF line endings, ready for
// SMTP DATA (which does the dot-stuffing).
func build(from sender, to mailaddr.Address, m Message, now time.Time) ([]byte, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	header := func(name, value string) {
		b.WriteString(name)
		b.WriteString(": ")
		b.WriteString(value)
		b.WriteString("\r\n")
	}
	header("From", (&netmail.Address{Name: from.name, Address: from.addr.String()}).String())
	header("To", to.String())
	header("Subject", encodeSubject(m.Subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id)+"@"+from.addr.Domain+">")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	// RFC 3834: an automatic message; well-behaved auto-responders
	// (out-of-office) do not answer it.
	header("Auto-Submitted", "auto-generated")
	b.WriteString("\r\n")

	text := strings.ReplaceAll(m.Text, "\r\n", "\n")
	text = strings.ReplaceAll(text, "\r", "\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(text)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b.Bytes(), []byte("\r\n")) {
		b.WriteString("\r\n")
	}
	return b.Bytes(), nil
}

// encodeSubject returns s as is if it is printable ASCII, or as RFC 2047
// Q-encoded words folded one per line, so that no line exceeds 78
// characters.
func encodeSubject(s string) string {
	enc := mime.QEncoding.Encode("utf-8", s)
	return strings.ReplaceAll(enc, "?= =?", "?=\r\n =?")
}
