package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// Churn (-churn R): R times a second during the window, one established
// call leaves (BYE) and a new call enters the same room the same way, in
// the same role (tone, marker) and on the same socket, so the rooms keep
// their size and their sounds. The new call must hear its room within
// -join-timeout like the calls of the ramp; if it cannot, it is a failed
// call. A call's media statistics cover the part of the window it was in
// its room (see report.go).

// churnStats counts the churn operations; written by the measuring
// goroutine only.
type churnStats struct {
	placed  int // calls that left and were replaced
	skipped int // ticks with no call eligible to leave
}

// churnOne picks a random call that has joined and is not leaving, hangs
// it up and places its replacement, in a goroutine of their own. It runs
// on the measuring goroutine, the only one that appends to r.calls during
// the window.
func (r *runner) churnOne(ctx context.Context) {
	var eligible []*call
	for _, rm := range r.rooms {
		for _, c := range rm.members {
			if !c.churned && c.failure() == nil && c.up.Load() && r.joined(c) {
				eligible = append(eligible, c)
			}
		}
	}
	if len(eligible) == 0 {
		r.churn.skipped++
		return
	}
	old := eligible[rand.IntN(len(eligible))]
	old.churned = true
	old.leftAt = time.Now()
	old.st.active.Store(false)

	nc := &call{idx: len(r.calls), member: old.member, room: old.room, talker: old.talker, freq: old.freq,
		isMarker: old.isMarker, churnIn: true, done: make(chan struct{})}
	nc.st = &stream{c: nc, g: old.st.g}
	r.mu.Lock()
	old.room.members[old.member] = nc
	r.mu.Unlock()
	initRx(nc)
	r.calls = append(r.calls, nc)
	r.churn.placed++

	r.churnWG.Add(1)
	go func() {
		defer r.churnWG.Done()
		r.leave(old)
		r.enter(ctx, nc)
	}()
}

// leave hangs up a churned-out call and unregisters its stream. A BYE that
// fails fails the call, as it does at the end of a run.
func (r *runner) leave(c *call) {
	bctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.ua.bye(bctx, c); err != nil {
		c.fail(err)
		r.log.Warn("churn hangup failed", "call", c.idx, "error", err)
	}
	c.st.g.remove(c.st)
	// Keep the user agent's table to the calls that exist.
	r.ua.calls.Delete(c.callID)
}

// enter sets up a churn-in call with the ramp's code and waits until it
// hears its room.
func (r *runner) enter(ctx context.Context, c *call) {
	r.setupCall(ctx, c)
	if c.failure() != nil || !c.up.Load() {
		return
	}
	if err := r.waitHeard(ctx, c, r.cfg.joinTimeout); err != nil {
		c.fail(err)
		r.log.Warn("churn call did not join", "call", c.idx, "room", c.room.number, "member", c.member, "call-id", c.callID, "error", err)
		return
	}
	c.joinDur, c.joinOK = r.joinTime(c)
	c.churnJoined = true
}

// waitHeard waits until c has joined (heard its room, see joined).
func (r *runner) waitHeard(ctx context.Context, c *call, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	// heard, not joined: the call may be picked to leave (and so be down)
	// as soon as it has joined, before this loop looks again.
	for !heard(c) {
		if err := c.failure(); err != nil {
			return err
		}
		if !c.up.Load() {
			return ErrHungUp
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%w within %s of its answer", ErrNotJoined, timeout)
		case <-poll.C:
		}
	}
	return nil
}

// failedChurn counts the churn-in calls that failed so far.
func (r *runner) failedChurn() int {
	n := 0
	for _, c := range r.calls {
		if c.churnIn && c.failure() != nil {
			n++
		}
	}
	return n
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
