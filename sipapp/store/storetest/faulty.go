// Package storetest has test doubles for package store.
package storetest

import (
	"context"
	"errors"
	"sync/atomic"

	"webconf/sipapp/store"
)

// Op names one kind of store write.
type Op int

// The writes a Faulty store can refuse.
const (
	PutRoom Op = iota
	DeleteRoom
	AddInvite
	TakeInvite
	WriteDocs
	PutStats
	numOps
)

// ErrInjected is what a refused write returns (wrapped).
var ErrInjected = errors.New("storetest: injected write failure")

// Faulty wraps a Store and refuses the kinds of write it is told to, on
// demand; reads (Load) and Close always pass through. Safe for concurrent
// use.
type Faulty struct {
	store.Store
	fail  [numOps]atomic.Bool
	calls [numOps]atomic.Int64
}

// NewFaulty wraps st (a new Memory store when nil).
func NewFaulty(st store.Store) *Faulty {
	if st == nil {
		st = store.NewMemory()
	}
	return &Faulty{Store: st}
}

// Fail makes the given kinds of write fail (on = true) or pass again.
func (f *Faulty) Fail(on bool, ops ...Op) {
	for _, op := range ops {
		f.fail[op].Store(on)
	}
}

// FailAll makes every kind of write fail or pass.
func (f *Faulty) FailAll(on bool) {
	for op := range numOps {
		f.fail[op].Store(on)
	}
}

// Calls counts the writes of a kind attempted so far, refused ones included.
func (f *Faulty) Calls(op Op) int64 { return f.calls[op].Load() }

func (f *Faulty) check(op Op) error {
	f.calls[op].Add(1)
	if f.fail[op].Load() {
		return ErrInjected
	}
	return nil
}

// PutRoom implements store.Store.
func (f *Faulty) PutRoom(ctx context.Context, r store.Room) error {
	if err := f.check(PutRoom); err != nil {
		return err
	}
	return f.Store.PutRoom(ctx, r)
}

// DeleteRoom implements store.Store.
func (f *Faulty) DeleteRoom(ctx context.Context, name string) error {
	if err := f.check(DeleteRoom); err != nil {
		return err
	}
	return f.Store.DeleteRoom(ctx, name)
}

// AddInvite implements store.Store.
func (f *Faulty) AddInvite(ctx context.Context, inv store.Invite) error {
	if err := f.check(AddInvite); err != nil {
		return err
	}
	return f.Store.AddInvite(ctx, inv)
}

// TakeInvite implements store.Store.
func (f *Faulty) TakeInvite(ctx context.Context, room, pid string) error {
	if err := f.check(TakeInvite); err != nil {
		return err
	}
	return f.Store.TakeInvite(ctx, room, pid)
}

// WriteDocs implements store.Store.
func (f *Faulty) WriteDocs(ctx context.Context, put []store.Doc, del []store.DocKey) error {
	if err := f.check(WriteDocs); err != nil {
		return err
	}
	return f.Store.WriteDocs(ctx, put, del)
}

// PutStats implements store.Store.
func (f *Faulty) PutStats(ctx context.Context, s store.Stats) error {
	if err := f.check(PutStats); err != nil {
		return err
	}
	return f.Store.PutStats(ctx, s)
}
