package verifier

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// trustState is one trusted root as one verification sees it.
type trustState struct {
	// configured says the root name was given to [WithTrustedRoot].
	configured bool
	// tm is nil when the root is configured but not available (yet).
	tm  root.TrustedMaterial
	gen string
}

// trustSnapshot reads each trusted root at most once per verification,
// so a reload in the middle of a verification cannot mix two roots, and
// every signer of one verdict is judged against the same material.
type trustSnapshot struct {
	roots map[string]TrustedMaterialFunc
	got   map[string]trustState
}

func (s *Sigstore) snapshot() *trustSnapshot {
	return &trustSnapshot{roots: s.cfg.roots, got: map[string]trustState{}}
}

// get returns the state of the root called name ("" is the default).
func (t *trustSnapshot) get(name string) trustState {
	if st, ok := t.got[name]; ok {
		return st
	}
	var st trustState
	if fn, ok := t.roots[name]; ok {
		st.configured = true
		st.tm, st.gen = fn()
		if st.tm == nil {
			st.gen = ""
		}
	}
	t.got[name] = st
	return st
}

// Generation identifies the trusted material the verifier currently
// uses: it changes whenever any configured trusted root is reloaded
// with different content (or becomes available), and is "" when no
// trusted root is configured. It is cheap (one call of each root's
// [TrustedMaterialFunc] and a SHA-256 over the generations) and safe
// for concurrent use.
//
// Callers that cache verdicts must key them on it as well as on the
// policy, so a verdict reached with an old root is never reused after a
// reload. Call it before [Sigstore.Verify]: Verify reads each root when
// it starts, so its verdict is never older than the generation read
// before it.
func (s *Sigstore) Generation() string {
	if len(s.cfg.roots) == 0 {
		return ""
	}
	names := make([]string, 0, len(s.cfg.roots))
	for name := range s.cfg.roots {
		names = append(names, name)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, name := range names {
		tm, gen := s.cfg.roots[name]()
		if tm == nil {
			gen = "unavailable"
		}
		// Length-prefixed, so names and generations cannot run together.
		fmt.Fprintf(h, "%d:%s%d:%s", len(name), name, len(gen), gen)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// staticGeneration is the generation of material that never changes:
// the SHA-256 of its JSON when it marshals (root.TrustedRoot), else its
// type and address, which identify the value for its lifetime.
func staticGeneration(tm root.TrustedMaterial) string {
	if m, ok := tm.(json.Marshaler); ok {
		if b, err := m.MarshalJSON(); err == nil {
			sum := sha256.Sum256(b)
			return hex.EncodeToString(sum[:])
		}
	}
	return fmt.Sprintf("%T@%p", tm, tm)
}

// rootLabel names a trusted root in messages.
func rootLabel(name string) string {
	if name == "" {
		return "trusted root"
	}
	return fmt.Sprintf("trusted root %q", name)
}

// rekorOnly is trusted material holding only a root's Rekor logs: what
// key signers need to check log entries, without trusting the root's
// certificate authorities for anything.
type rekorOnly struct {
	root.BaseTrustedMaterial
	logs map[string]*root.TransparencyLog
}

func (r *rekorOnly) RekorLogs() map[string]*root.TransparencyLog { return r.logs }

// logIDHex returns a log ID as lower-case hex, the form trusted roots
// key their logs by.
func logIDHex(id string) string { return hex.EncodeToString([]byte(id)) }
