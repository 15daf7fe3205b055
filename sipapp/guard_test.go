package sipapp

import (
	"testing"
	"time"
)

func TestBudget(t *testing.T) {
	c := newClock()
	b := NewBudget(3, time.Minute, 10*time.Minute, c.now)
	for i := 0; i < 2; i++ {
		if b.Fail("1.2.3.4") {
			t.Fatalf("banned after %d failures", i+1)
		}
	}
	c.add(2 * time.Minute) // the first two fall out of the window
	first := b.Fail("1.2.3.4")
	second := b.Fail("1.2.3.4")
	if first || second {
		t.Fatal("failures outside the window counted")
	}
	if !b.Fail("1.2.3.4") || !b.Banned("1.2.3.4") {
		t.Fatal("not banned after 3 failures in a window")
	}
	if b.Banned("5.6.7.8") {
		t.Fatal("another source banned")
	}
	c.add(10*time.Minute + time.Second)
	if b.Banned("1.2.3.4") {
		t.Fatal("still banned after the ban period")
	}
	if b.Bans() != 1 {
		t.Fatalf("bans %d, want 1", b.Bans())
	}
	if NewBudget(0, time.Minute, time.Minute, nil).Fail("x") {
		t.Fatal("a disabled budget banned")
	}
}

func TestRate(t *testing.T) {
	c := newClock()
	r := NewRate(2, 4, c.now)
	for i := 0; i < 4; i++ {
		if !r.Allow("a") {
			t.Fatalf("burst refused at %d", i)
		}
	}
	if r.Allow("a") {
		t.Fatal("beyond the burst allowed")
	}
	if !r.Allow("b") {
		t.Fatal("another source limited")
	}
	c.add(500 * time.Millisecond)
	if !r.Allow("a") || r.Allow("a") {
		t.Fatal("refill is not 2 per second")
	}
	if r.Dropped() != 2 {
		t.Fatalf("dropped %d, want 2", r.Dropped())
	}
}
