package rpc

import (
	"context"
	"fmt"
	"log/slog"
)

// SEMS log levels (L_ERR=0 .. L_DBG=3) against slog's.
var semsLevels = []slog.Level{slog.LevelError, slog.LevelWarn, slog.LevelInfo, slog.LevelDebug}

func semsLevel(l slog.Level) int {
	for i := len(semsLevels) - 1; i >= 0; i-- {
		if l <= semsLevels[i] {
			return i
		}
	}
	return 0
}

// registerBuiltins adds xmlrpc2di's own methods (spec 1.4). SEMS registers
// them but they answer "unknown method" there (A.4); clients call calls()
// first, so ours work.
func (s *Service) registerBuiltins() {
	t := s.table
	ok := "200 OK"
	t.Register("calls", func(context.Context, []any) (any, error) { return s.srv.ActiveCalls(), nil })
	t.Register("get_sessioncount", func(context.Context, []any) (any, error) { return s.srv.ActiveCalls(), nil })
	t.Register("get_loglevel", func(context.Context, []any) (any, error) { return semsLevel(s.opt.LogLevel.Level()), nil })
	t.Register("set_loglevel", func(_ context.Context, args []any) (any, error) {
		if err := checkArgs(args, "i"); err != nil {
			return nil, err
		}
		l := num(args, 0)
		l = max(0, min(l, len(semsLevels)-1))
		s.opt.LogLevel.Set(semsLevels[l])
		return ok, nil
	})
	t.Register("get_shutdownmode", func(context.Context, []any) (any, error) { return s.srv.ShutdownMode(), nil })
	t.Register("set_shutdownmode", func(_ context.Context, args []any) (any, error) {
		if len(args) == 0 {
			return nil, typeMismatch(0)
		}
		var on bool
		switch v := args[0].(type) {
		case bool:
			on = v
		case int:
			on = v != 0
		default:
			return nil, typeMismatch(0)
		}
		s.srv.SetShutdownMode(on)
		return ok, nil
	})
	t.Register("get_callsavg", func(context.Context, []any) (any, error) { avg, _ := s.srv.CallLoad(); return avg, nil })
	t.Register("get_callsmax", func(context.Context, []any) (any, error) { _, mx := s.srv.CallLoad(); return mx, nil })
	t.Register("get_cpsavg", func(context.Context, []any) (any, error) { avg, _ := s.srv.CPS(); return avg, nil })
	t.Register("get_cpsmax", func(context.Context, []any) (any, error) { _, mx := s.srv.CPS(); return mx, nil })
	t.Register("get_cpslimit", func(context.Context, []any) (any, error) {
		hard, soft := s.srv.CPSLimit()
		return fmt.Sprintf("%d %d", hard, soft), nil
	})
	t.Register("set_cpslimit", func(_ context.Context, args []any) (any, error) {
		if err := checkArgs(args, "i"); err != nil {
			return nil, err
		}
		s.srv.SetCPSLimit(num(args, 0))
		return ok, nil
	})
}
