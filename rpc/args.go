package rpc

// SEMS's argument faults (spec 1.5): the checks are positional prefix
// checks; extra trailing arguments are accepted and ignored.
const (
	codeArgs        = 300
	msgOutOfBounds  = "Exception: AmArg out of bounds - parameter number mismatch."
	msgTypeMismatch = "Exception: Type mismatch in arguments."
)

func outOfBounds(i int) *Fault {
	return &Fault{Code: codeArgs, Message: msgOutOfBounds, Param: i, Kind: KindParams}
}

func typeMismatch(i int) *Fault {
	return &Fault{Code: codeArgs, Message: msgTypeMismatch, Param: i, Kind: KindParams}
}

// checkArgs asserts that args start with the types in spec ('s' string,
// 'i' int), as SEMS's assertArgCStr/assertArgInt do. No arguments at all
// is a type mismatch (SEMS then has no array, A.1); too few, out of bounds.
func checkArgs(args []any, spec string) error {
	if len(spec) > 0 && len(args) == 0 {
		return typeMismatch(0)
	}
	for i := 0; i < len(spec); i++ {
		if i >= len(args) {
			return outOfBounds(i)
		}
		switch spec[i] {
		case 's':
			if _, ok := args[i].(string); !ok {
				return typeMismatch(i)
			}
		case 'i':
			if _, ok := args[i].(int); !ok {
				return typeMismatch(i)
			}
		}
	}
	return nil
}

// str and num read arguments already checked by checkArgs.
func str(args []any, i int) string { return args[i].(string) }
func num(args []any, i int) int    { return args[i].(int) }

// optStr reads an optional string argument; a missing or non-string one
// gives def (SEMS treats a non-string there as absent).
func optStr(args []any, i int, def string) string {
	if i < len(args) {
		if s, ok := args[i].(string); ok {
			return s
		}
	}
	return def
}
