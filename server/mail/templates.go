package mail

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Templates builds the messages of the account flows. Each message is in
// French, then in English, plain text, short, and says what to do if the
// reader did not ask for it. The zero value works; set Node.
type Templates struct {
	// Node is the name of the service as its users know it, for example
	// "Relais – Mairie de Lyon" or "chat.mairie-lyon.fr". Empty means
	// "Relais".
	Node string
	// Location is the time zone of dates in messages; nil means time.Local
	// (set it to Europe/Paris on a server kept in UTC).
	Location *time.Location
}

// nbsp is the no-break space French typography puts before ':' and
// inside « ».
const nbsp = "\u00a0"

const separator = "\n\n---------------------------------------------------------------\n\n"

func (t Templates) node() string {
	if n := clean(t.Node, 80); n != "" {
		return n
	}
	return "Relais"
}

// compose assembles the bilingual body: a pointer to the English version,
// the French text, the English text, and the automatic-message footer.
func (t Templates) compose(fr, en string) string {
	node := t.node()
	var b strings.Builder
	b.WriteString("(English version below)\n\n")
	b.WriteString(strings.TrimSpace(fr))
	b.WriteString("\n\n-- \n" + node + "\n")
	b.WriteString("Message automatique, merci de ne pas y répondre.")
	b.WriteString(separator)
	b.WriteString(strings.TrimSpace(en))
	b.WriteString("\n\n-- \n" + node + "\n")
	b.WriteString("Automatic message, please do not reply.\n")
	return b.String()
}

// Verification is the message that proves the address of someone who is
// registering: a link to open, and a code to type if the link is opened on
// another device (code may be empty).
func (t Templates) Verification(to, link, code string) Message {
	node := t.node()
	link, code = clean(link, 2048), clean(code, 32)
	var frCode, enCode string
	if code != "" {
		frCode = "\nVous pouvez aussi saisir ce code sur la page d’inscription" + nbsp + ":\n\n    " + code + "\n"
		enCode = "\nYou can also enter this code on the registration page:\n\n    " + code + "\n"
	}
	fr := fmt.Sprintf(`Bonjour,

Pour terminer la création de votre compte sur %s, confirmez votre adresse e-mail en ouvrant ce lien%s:

    %s
%s
La page vous demandera le mot de passe choisi à l’inscription. Si vous ne le reconnaissez pas, quelqu’un d’autre a demandé ce compte à votre nom%s: inscrivez-vous vous-même, sa demande sera effacée.

Si vous n’avez pas demandé à créer un compte, ignorez ce message%s: aucun compte ne sera créé.

Nous ne vous demanderons jamais votre mot de passe par e-mail.`, node, nbsp, link, frCode, nbsp, nbsp)
	en := fmt.Sprintf(`Hello,

To finish creating your account on %s, confirm your e-mail address by opening this link:

    %s
%s
The page will ask for the password you chose when registering. If you do not recognise it, someone else asked for this account in your name: register yourself, and their request is erased.

If you did not ask for an account, ignore this message: no account will be created.

We will never ask for your password by e-mail.`, node, link, enCode)
	return Message{
		To:      to,
		Subject: "Confirmez votre adresse e-mail / Confirm your e-mail address – " + node,
		Text:    t.compose(fr, en),
	}
}

// PasswordReset is the message with the link that lets its reader choose a
// new password.
func (t Templates) PasswordReset(to, link string) Message {
	node := t.node()
	link = clean(link, 2048)
	fr := fmt.Sprintf(`Bonjour,

Une demande de nouveau mot de passe a été faite pour votre compte sur %s. Pour choisir un nouveau mot de passe, ouvrez ce lien%s:

    %s

Si vous n’êtes pas à l’origine de cette demande, ignorez ce message%s: votre mot de passe actuel reste valable et personne d’autre ne reçoit ce lien.

Nous ne vous demanderons jamais votre mot de passe par e-mail.`, node, nbsp, link, nbsp)
	en := fmt.Sprintf(`Hello,

Someone asked for a new password for your account on %s. To choose a new password, open this link:

    %s

If you did not ask for it, ignore this message: your current password still works and nobody else receives this link.

We will never ask for your password by e-mail.`, node, link)
	return Message{
		To:      to,
		Subject: "Nouveau mot de passe / New password – " + node,
		Text:    t.compose(fr, en),
	}
}

// Renewal asks the reader to confirm that they still need their account,
// which otherwise expires at expires.
func (t Templates) Renewal(to, link string, expires time.Time) Message {
	node := t.node()
	link = clean(link, 2048)
	loc := t.Location
	if loc == nil {
		loc = time.Local
	}
	expires = expires.In(loc)
	fr := fmt.Sprintf(`Bonjour,

Votre compte sur %s arrive à échéance. Si vous en avez toujours besoin pour votre travail, confirmez-le avant le %s en ouvrant ce lien%s:

    %s

Sans confirmation, votre compte sera désactivé à cette date. Si vous avez quitté votre administration, vous n’avez rien à faire.`,
		node, frenchDate(expires), nbsp, link)
	en := fmt.Sprintf(`Hello,

Your account on %s is due for renewal. If you still need it for your work, confirm it before %s by opening this link:

    %s

Without confirmation, your account will be deactivated on that date. If you have left your administration, you need not do anything.`,
		node, expires.Format("Monday 2 January 2006"), link)
	return Message{
		To:      to,
		Subject: "Votre compte arrive à échéance / Your account is due for renewal – " + node,
		Text:    t.compose(fr, en),
	}
}

// Invitation invites the reader, usually an external correspondent, to
// join a conversation. It names the inviter's administration by its
// e-mail domain (set by the operator, not by users) and carries no text a
// user chose: neither the room's name nor the inviter's display name, so
// that invitations cannot be used to mail arbitrary text to any address.
// The person sees who invited them where once they open the link.
func (t Templates) Invitation(to, inviterDomain, link string) Message {
	node := t.node()
	link = clean(link, 2048)
	org := clean(inviterDomain, 80)
	if org == "" {
		org = node
	}
	fr := fmt.Sprintf(`Bonjour,

Un agent de l’administration %s vous invite à rejoindre une conversation sur %s, sa messagerie sécurisée.

Pour voir qui vous invite, accepter l’invitation et créer votre accès, ouvrez ce lien%s:

    %s

Vous n’aurez accès qu’aux conversations auxquelles on vous invite. Si vous n’attendiez pas cette invitation, ignorez ce message.`,
		org, node, nbsp, link)
	en := fmt.Sprintf(`Hello,

An agent of the administration %s invites you to join a conversation on %s, its secure messaging service.

To see who invites you, accept the invitation and create your access, open this link:

    %s

You will only see the conversations you are invited to. If you did not expect this invitation, ignore this message.`,
		org, node, link)
	return Message{
		To:      to,
		Subject: clean("Invitation – "+org+" / Invitation – "+org+" – "+node, MaxSubject),
		Text:    t.compose(fr, en),
	}
}

// AlreadyRegistered answers a registration attempt for an address that
// already has an account, so that the registration form reveals nothing
// about which addresses are registered: the owner of the address learns it
// by e-mail, with the links to log in or reset the password.
func (t Templates) AlreadyRegistered(to, loginLink, resetLink string) Message {
	node := t.node()
	loginLink, resetLink = clean(loginLink, 2048), clean(resetLink, 2048)
	fr := fmt.Sprintf(`Bonjour,

Quelqu’un, probablement vous, a demandé à créer un compte sur %s avec cette adresse e-mail. Vous avez déjà un compte%s: il n’en a pas été créé d’autre.

Pour vous connecter%s:

    %s

Si vous avez oublié votre mot de passe%s:

    %s

Si vous n’êtes pas à l’origine de cette demande, ignorez ce message%s: votre compte n’a pas été modifié.`,
		node, nbsp, nbsp, loginLink, nbsp, resetLink, nbsp)
	en := fmt.Sprintf(`Hello,

Someone, probably you, asked to create an account on %s with this e-mail address. You already have an account, so no other was created.

To log in:

    %s

If you forgot your password:

    %s

If you did not ask for it, ignore this message: your account has not been changed.`,
		node, loginLink, resetLink)
	return Message{
		To:      to,
		Subject: "Vous avez déjà un compte / You already have an account – " + node,
		Text:    t.compose(fr, en),
	}
}

var (
	frenchDays   = [...]string{"dimanche", "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"}
	frenchMonths = [...]string{"janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre", "novembre", "décembre"}
)

// frenchDate formats t as "mardi 3 mars 2026" ("1er" for the first day of
// the month).
func frenchDate(t time.Time) string {
	day := fmt.Sprint(t.Day())
	if t.Day() == 1 {
		day = "1er"
	}
	return frenchDays[t.Weekday()] + " " + day + " " + frenchMonths[t.Month()-1] + " " + fmt.Sprint(t.Year())
}

// clean makes user- or operator-supplied text safe to place in a message:
// invalid UTF-8, control and format characters (line breaks, bidi
// overrides, zero-width characters) become spaces, runs of spaces collapse,
// and the result is cut to max characters with an ellipsis.
func clean(s string, max int) string {
	s = strings.ToValidUTF8(s, " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = strings.TrimSpace(string(r[:max-1])) + "…"
	}
	return s
}
