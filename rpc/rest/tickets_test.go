package rest

import (
	"testing"
	"time"
)

// TestTicketBook: a ticket is good once, before ticketTTL has passed,
// and carries who asked for it.
func TestTicketBook(t *testing.T) {
	now := time.Unix(1700000000, 0)
	b := newTicketBook(func() time.Time { return now })

	tk, ok := b.issue(ticket{user: "u1"})
	if !ok || len(tk) != 43 {
		t.Fatalf("issue: %q %v", tk, ok)
	}
	other, _ := b.issue(ticket{operator: true})
	if other == tk {
		t.Fatal("two tickets alike")
	}
	now = now.Add(ticketTTL - time.Millisecond)
	if got, ok := b.take(tk); !ok || got.user != "u1" || got.operator {
		t.Fatalf("take within the TTL: %+v %v", got, ok)
	}
	if _, ok := b.take(tk); ok {
		t.Fatal("a ticket was good twice")
	}
	now = now.Add(time.Millisecond)
	if _, ok := b.take(other); ok {
		t.Fatal("an expired ticket was good")
	}
	if _, ok := b.take("nonsense"); ok {
		t.Fatal("an unknown ticket was good")
	}

	// At most maxTickets unused at once; expired ones make room.
	for i := 0; i < maxTickets; i++ {
		if _, ok := b.issue(ticket{operator: true}); !ok {
			t.Fatalf("ticket %d refused", i)
		}
	}
	if _, ok := b.issue(ticket{operator: true}); ok {
		t.Fatal("more than maxTickets held")
	}
	now = now.Add(ticketTTL)
	if _, ok := b.issue(ticket{operator: true}); !ok {
		t.Fatal("expired tickets were not swept")
	}
}
