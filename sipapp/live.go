package sipapp

import "webconf/sipapp/mixer"

// joinLive puts a call into its room's mix. Joining an empty room plays
// first_participant to the joiner (looped if configured); joining a room
// with others plays join_sound to each of them, cutting a looping
// first_participant prompt first (spec 5.4).
func (s *Server) joinLive(name string, c *call) {
	pr := s.opt.Prompts
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

	if len(others) == 0 {
		c.member.Play(mixer.NewPrompt(pr.FirstParticipant, s.opt.LoopFirstParticipant))
	} else {
		g.Each(nil, func(m *mixer.Member) {
			m.StopLoopingLocked()
			m.PlayLocked(mixer.NewPrompt(pr.JoinSound, false))
		})
	}
	g.Add(c.member)
	for _, o := range others {
		o.pokeAlone()
	}
}

// leaveLive takes a call out of its room's mix; the others hear
// drop_sound. The last one out closes the room's mix group, so an empty
// room costs nothing per tick.
func (s *Server) leaveLive(name string, c *call) {
	s.mu.Lock()
	lr := s.rooms[name]
	if lr == nil {
		s.mu.Unlock()
		return
	}
	for i, x := range lr.members {
		if x == c {
			lr.members = append(lr.members[:i], lr.members[i+1:]...)
			break
		}
	}
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
	drop := s.opt.Prompts.DropSound
	lr.group.Each(nil, func(m *mixer.Member) { m.PlayLocked(mixer.NewPrompt(drop, false)) })
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
