package bench

import (
	"context"
	"fmt"
	"time"

	"relais/server/account"
	"relais/server/id"
	"relais/server/store"
)

// benchAccount is an account made by provisionAccounts: an active agent
// and the bearer tokens of its signed-in devices.
type benchAccount struct {
	ID     string
	Email  string
	Name   string
	Tokens []string
}

// provisionAccounts creates count active agents (addresses
// prefix.<i>@domain, all with the given argon2id password hash) with
// devices signed-in sessions each, directly in the store, in large
// transactions. The bench's subject is the node's behaviour with many
// users, not registration: registering 100 k accounts over HTTP would cost
// 100 k password hashes (hours) by design. It skips the registration rule,
// verification and rate limits, which is why it lives here and not in
// package account: no serving path can reach it. Session tokens come from
// account.NewSessionToken, so that account alone knows how a token is kept.
func provisionAccounts(ctx context.Context, db *store.DB, prefix, domain, passwordHash string, count, devices int) ([]benchAccount, error) {
	out := make([]benchAccount, count)
	now := time.Now()
	const perTx = 1000
	for start := 0; start < count; start += perTx {
		end := min(start+perTx, count)
		type session struct {
			hash []byte
			s    store.Session
		}
		users := make([]store.User, 0, end-start)
		var sessions []session
		for i := start; i < end; i++ {
			a := benchAccount{
				ID:    id.NewUser(db.Node()),
				Email: fmt.Sprintf("%s.%d@%s", prefix, i, domain),
				Name:  fmt.Sprintf("Bench %s %d", prefix, i),
			}
			users = append(users, store.User{ID: a.ID, Email: a.Email, Name: a.Name, Org: domain,
				Password: passwordHash, State: store.UserActive, Created: now})
			for range devices {
				token, hash := account.NewSessionToken()
				a.Tokens = append(a.Tokens, token)
				sessions = append(sessions, session{hash, store.Session{UserID: a.ID, DeviceID: id.NewDevice(),
					Name: "relais bench", Created: now, LastSeen: now}})
			}
			out[i] = a
		}
		err := db.Update(ctx, func(tx *store.Tx) error {
			for _, u := range users {
				if err := tx.CreateUser(u); err != nil {
					return fmt.Errorf("create %s: %w", u.Email, err)
				}
			}
			for _, s := range sessions {
				if err := tx.CreateSession(s.hash, s.s); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("bench: provision accounts: %w", err)
		}
	}
	return out, nil
}
