package policy

// Attestation conditions: CEL expressions over an in-toto statement,
// compiled once when the configuration is parsed and evaluated by the
// verifier over each statement that verified.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
)

// ConditionCostLimit bounds the work one evaluation of a condition may
// do, in CEL cost units (roughly one per operation, per list element a
// comprehension visits, and per byte a string function scans). It is
// the per-expression limit Kubernetes uses for CEL: enough to scan a
// predicate with tens of thousands of entries, and small enough that a
// pathological expression stops within milliseconds. An evaluation
// that exceeds it fails, and a failing condition denies.
const ConditionCostLimit = 1_000_000

// Condition is a compiled attestation condition: a CEL expression
// (https://cel.dev) of type bool over the variables of
// [ConditionInput]. It is safe for concurrent use.
type Condition struct {
	source  string
	program cel.Program
}

// ConditionInput is what a condition sees of one verified in-toto
// statement, as JSON values: objects are map[string]any, arrays []any,
// numbers float64, and strings, booleans and null as themselves.
type ConditionInput struct {
	// PredicateType is the statement's predicateType (variable
	// predicateType, a string).
	PredicateType string
	// Subject is the statement's subject list (variable subject, a list
	// of maps: name, digest, annotations).
	Subject []any
	// Predicate is the statement's predicate (variable predicate, dyn),
	// or nil (null) when it has none.
	Predicate any
	// Now is the time of the verification (variable now, a timestamp).
	Now time.Time
}

// ConditionError is a condition that does not compile: a syntax error,
// an undeclared variable or function, a type error, or a type other
// than bool.
type ConditionError struct {
	// Line and Column locate the problem in the expression, 1-based;
	// zero when it concerns the whole expression.
	Line, Column int
	// Msg describes the problem.
	Msg string
}

// Error returns e.g. "line 1, column 10: undeclared reference to 'predicat'".
func (e *ConditionError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Msg)
}

// conditionEnv is the CEL environment of every condition: the
// standard library, the strings extension (lowerAscii, split, …),
// optional values (predicate.?a.orValue("")), numbers compared across
// int and double, times in UTC, and the four variables.
var conditionEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("predicateType", cel.StringType),
		cel.Variable("subject", cel.ListType(cel.MapType(cel.StringType, cel.DynType))),
		cel.Variable("predicate", cel.DynType),
		cel.Variable("now", cel.TimestampType),
		ext.Strings(),
		cel.OptionalTypes(),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
	)
})

// CompileCondition compiles a condition. It fails with a
// [*ConditionError] when src does not parse, does not type-check
// against the variables of [ConditionInput], or is not of type bool
// (a bare field such as predicate.ok is dyn: compare it, as in
// predicate.ok == true).
func CompileCondition(src string) (*Condition, error) {
	env, err := conditionEnv()
	if err != nil {
		return nil, fmt.Errorf("CEL environment: %w", err)
	}
	if strings.TrimSpace(src) == "" {
		return nil, &ConditionError{Msg: "empty expression"}
	}
	ast, iss := env.Compile(src)
	if iss.Err() != nil {
		errs := iss.Errors()
		if len(errs) == 0 {
			return nil, &ConditionError{Msg: firstLine(iss.Err().Error())}
		}
		e := errs[0]
		ce := &ConditionError{Msg: strings.TrimSuffix(firstLine(e.Message), " (in container '')")}
		if e.Location != nil && e.Location.Line() > 0 {
			ce.Line, ce.Column = e.Location.Line(), e.Location.Column()+1
		}
		if n := len(errs); n > 1 {
			ce.Msg += fmt.Sprintf(" (and %d more problem(s))", n-1)
		}
		return nil, ce
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) {
		msg := fmt.Sprintf("must be a boolean expression, not of type %s", t)
		if t.IsExactType(cel.DynType) {
			msg += " (compare the value, e.g. predicate.ok == true)"
		}
		return nil, &ConditionError{Msg: msg}
	}
	prg, err := env.Program(ast,
		cel.CostLimit(ConditionCostLimit),
		cel.InterruptCheckFrequency(100),
	)
	if err != nil {
		return nil, &ConditionError{Msg: firstLine(err.Error())}
	}
	return &Condition{source: src, program: prg}, nil
}

// MustCompileCondition is [CompileCondition] for expressions known to
// be valid, such as constants in tests; it panics on an error.
func MustCompileCondition(src string) *Condition {
	c, err := CompileCondition(src)
	if err != nil {
		panic(fmt.Sprintf("condition %q: %v", src, err))
	}
	return c
}

// String returns the expression as written.
func (c *Condition) String() string {
	if c == nil {
		return ""
	}
	return c.source
}

// Equal reports whether c and o are the same expression (go-cmp uses
// it to compare configurations).
func (c *Condition) Equal(o *Condition) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.source == o.source
}

// Eval evaluates the condition over in. It returns an error when the
// evaluation fails: a missing field (predicate.a.b where a has no b), a
// value of the wrong type, a function error (timestamp("garbage")),
// the cost limit [ConditionCostLimit], or ctx ending. Callers must
// treat an error as "not satisfied".
func (c *Condition) Eval(ctx context.Context, in ConditionInput) (bool, error) {
	if c == nil || c.program == nil {
		return false, errors.New("condition is not compiled")
	}
	subject := in.Subject
	if subject == nil {
		subject = []any{}
	}
	out, _, err := c.program.ContextEval(ctx, map[string]any{
		"predicateType": in.PredicateType,
		"subject":       subject,
		"predicate":     in.Predicate,
		"now":           in.Now.UTC(),
	})
	if err != nil {
		return false, errors.New(firstLine(err.Error()))
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("evaluated to %s, not a bool", out.Type().TypeName())
	}
	return bool(b), nil
}

// firstLine returns the first line of s: CEL messages may append a
// source snippet.
func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}
