package sipapp

import (
	"slices"

	"webconf/sipapp/mixer"
)

// joinLive puts a call into its room's mix. Joining an empty room plays
// first_participant to the joiner (looped if configured); joining a room
// with others plays join_sound to each of them, cutting a looping
// first_participant prompt first (spec 5.4).
//
// quiet joins without any of that: a dialled callee who is still ringing
// is in the mix (the room hears the ringback) but has not arrived yet;
// announce plays the sounds when it answers.
func (s *Server) joinLive(name string, c *call, quiet bool) {
	s.mu.Lock()
	lr := s.rooms[name]
	if lr == nil {
		lr = &liveRoom{name: name, group: s.mix.NewGroup()}
		s.rooms[name] = lr
	}
	others := append([]*call(nil), lr.members...)
	lr.members = append(lr.members, c)
	g := lr.group
	s.mu.Unlock()

	if !quiet {
		s.greet(g, c, len(others) == 0)
	}
	g.Add(c.member)
	for _, o := range others {
		o.pokeAlone()
	}
}

// greet plays first_participant to a lone joiner, or join_sound to the
// others (cutting a looping first_participant prompt first).
func (s *Server) greet(g *mixer.Group, c *call, alone bool) {
	pr := s.opt.Prompts
	if alone {
		c.member.Play(mixer.NewPrompt(pr.FirstParticipant, s.opt.LoopFirstParticipant))
		return
	}
	g.Each(c.member, func(m *mixer.Member) {
		m.StopLoopingLocked()
		m.PlayCoalescedLocked(mixer.NewPrompt(pr.JoinSound, false))
	})
}

// announce greets a member that joined quietly (a callee who answered).
func (s *Server) announce(name string, c *call) {
	s.mu.Lock()
	lr := s.rooms[name]
	s.mu.Unlock()
	if lr == nil {
		return
	}
	s.greet(lr.group, c, lr.group.Len() <= 1)
}

// leaveLive takes a call out of its room's mix; the others hear
// drop_sound unless quiet (a callee who never answered). The last one out
// closes the room's mix group, so an empty room costs nothing per tick.
// A call that is not in the mix changes nothing.
func (s *Server) leaveLive(name string, c *call, quiet bool) {
	s.mu.Lock()
	lr := s.rooms[name]
	i := -1
	if lr != nil {
		i = slices.Index(lr.members, c)
	}
	if i < 0 {
		s.mu.Unlock()
		return
	}
	lr.members = slices.Delete(lr.members, i, i+1)
	others := append([]*call(nil), lr.members...)
	empty := len(lr.members) == 0
	if empty {
		delete(s.rooms, name)
	}
	s.mu.Unlock()

	lr.group.Remove(c.member)
	if empty {
		lr.group.Close()
		return
	}
	if quiet {
		return
	}
	drop := s.opt.Prompts.DropSound
	lr.group.Each(nil, func(m *mixer.Member) { m.PlayCoalescedLocked(mixer.NewPrompt(drop, false)) })
	for _, o := range others {
		o.pokeAlone()
	}
}

// liveCount is how many calls are in the room's mix.
func (s *Server) liveCount(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lr := s.rooms[name]; lr != nil {
		return len(lr.members)
	}
	return 0
}
