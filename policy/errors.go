package policy

import (
	"errors"
	"fmt"
)

// ErrNoRule is returned (wrapped) by [Config.Match] when no rule governs
// an image. The caller applies [Config.Unmatched]; any other error from
// Match must be treated as a denial.
var ErrNoRule = errors.New("no policy matches")

// ErrInvalidImage is returned (wrapped) by [Config.Match] for a name that
// is not a normalised "<registry>/<repository>" (see [NormalizeImage]).
// It does not wrap [ErrNoRule], so a malformed name is denied even when
// unmatched images are allowed.
var ErrInvalidImage = errors.New("invalid image name")

// ParseError is one problem [Parse] found in a configuration. Parse
// returns every problem it finds, joined with [errors.Join] in line
// order, so a user can fix them in one go; use [errors.As] to get the
// first one, or the Unwrap() []error method of the joined error to list
// them all.
type ParseError struct {
	// File is the file name given to Parse.
	File string
	// Line is the 1-based line of the problem, or 0 when it has none
	// (an unreadable or empty document).
	Line int
	// Path locates the problem in the document, e.g.
	// "policies[0].signers[1]", or is empty at the top level.
	Path string
	// Err describes the problem. It may wrap the cause, e.g. an
	// [io/fs.ErrNotExist] from reading a key file.
	Err error
}

// Error returns "file:line: path: problem".
func (e *ParseError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Path != "" {
		loc += ": " + e.Path
	}
	return loc + ": " + e.Err.Error()
}

// Unwrap returns the underlying problem.
func (e *ParseError) Unwrap() error { return e.Err }
