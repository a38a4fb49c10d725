// Package bus declares the message bus the node's parts publish and
// subscribe through. The cluster package implements it with an embedded NATS
// server; the server packages depend only on this interface.
package bus

import "errors"

// ErrClosed is returned by a Bus that has been closed.
var ErrClosed = errors.New("bus: closed")

// Handler receives one message. It is called on the subscription's own
// goroutine, one message at a time and in publication order, so it must not
// block: hand long work to a queue. data is owned by the handler.
type Handler func(subject string, data []byte)

// Bus is a subject-addressed publish/subscribe bus.
//
// Subjects are dot-separated tokens; a token is made of letters, digits, '-'
// and '_'. In a subscription, "*" matches one token and a final ">" matches
// one or more. Publish does not block on subscribers; a message published
// before Subscribe returns is not delivered to that subscription. All methods
// are safe for concurrent use.
type Bus interface {
	// Publish sends data to every current subscription matching subject.
	// The bus copies data before Publish returns.
	Publish(subject string, data []byte) error
	// Subscribe registers h for subject (which may hold wildcards).
	Subscribe(subject string, h Handler) (Subscription, error)
	// Flush returns once every message published before it has been
	// handed to the matching subscriptions' queues.
	Flush() error
	// Close drains subscriptions and releases the bus; it is safe to call
	// after a partial start and more than once.
	Close() error
}

// Subscription is a registration made with Bus.Subscribe.
type Subscription interface {
	// Unsubscribe stops deliveries; the handler is not called after it
	// returns, except for a call already in progress.
	Unsubscribe() error
}

// Discard is a Bus that drops what is published and delivers nothing: the
// bus of a service used on its own, with a store but no mesh (tests of
// one package's rules, tools).
type Discard struct{}

var _ Bus = Discard{}

// Publish drops data.
func (Discard) Publish(string, []byte) error { return nil }

// Subscribe registers nothing: h is never called.
func (Discard) Subscribe(string, Handler) (Subscription, error) { return discarded{}, nil }

// Flush returns at once.
func (Discard) Flush() error { return nil }

// Close does nothing.
func (Discard) Close() error { return nil }

type discarded struct{}

func (discarded) Unsubscribe() error { return nil }
