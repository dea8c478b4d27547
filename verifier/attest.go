package verifier

// Attestation requirements: which verified in-toto statements satisfy
// which requirement of a rule, and why the others do not. Pure: it
// sees only candidates discovery already fetched and hashed.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/policy"
)

// maxStatementDepth bounds the nesting of a statement's JSON, so a
// hostile statement cannot make the conversion recurse without end.
const maxStatementDepth = 256

// statement is a verified in-toto statement as a condition sees it.
type statement struct {
	predicateType string
	subject       []any
	predicate     any
}

// parseStatement parses the payload of a verified DSSE envelope as an
// in-toto statement (https://in-toto.io/Statement/v0.1 or v1) about
// dgst, converting it into the JSON values conditions see: objects as
// map[string]any, arrays as []any, numbers as float64 (overflowing
// numbers become ±Inf), strings, booleans and nil.
//
// It is stricter than encoding/json, so that the statement a condition
// judges is exactly the statement that was signed, however another
// parser reads it: duplicate keys (at any depth), trailing data,
// invalid UTF-8 and nesting deeper than maxStatementDepth are errors.
// The statement must have a string predicateType and a list of subject
// objects, one of whose digests names dgst: sigstore-go checks that too,
// on its own parse.
func parseStatement(payload []byte, dgst digest.Digest) (*statement, error) {
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	v, err := decodeJSON(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("statement has data after its JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("statement is not a JSON object")
	}
	typ, _ := obj["_type"].(string)
	if !strings.HasPrefix(typ, "https://in-toto.io/Statement/") {
		return nil, fmt.Errorf("statement _type is %q, not an in-toto statement", truncate(typ, 80))
	}
	st := &statement{predicate: obj["predicate"]}
	if st.predicateType, ok = obj["predicateType"].(string); !ok || st.predicateType == "" {
		return nil, errors.New("statement has no predicateType")
	}
	subjects, ok := obj["subject"].([]any)
	if !ok {
		return nil, errors.New("statement has no subject list")
	}
	named := false
	for _, sub := range subjects {
		m, ok := sub.(map[string]any)
		if !ok {
			return nil, errors.New("statement subject is not an object")
		}
		if d, ok := m["digest"].(map[string]any); ok && d[string(digest.SHA256)] == dgst.Encoded() {
			named = true
		}
	}
	if !named {
		return nil, errors.New("statement does not name " + dgst.String())
	}
	st.subject = subjects
	return st, nil
}

// decodeJSON reads one JSON value from dec (which uses numbers).
func decodeJSON(dec *json.Decoder, depth int) (any, error) {
	if depth > maxStatementDepth {
		return nil, fmt.Errorf("statement is nested more than %d levels deep", maxStatementDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("statement is not valid JSON")
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, errors.New("statement is not valid JSON")
				}
				k, ok := kt.(string)
				if !ok {
					return nil, errors.New("statement is not valid JSON")
				}
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("statement has the key %q twice in one object", truncate(k, 80))
				}
				if obj[k], err = decodeJSON(dec, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, errors.New("statement is not valid JSON")
			}
			return obj, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeJSON(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, errors.New("statement is not valid JSON")
			}
			return arr, nil
		}
		return nil, errors.New("statement is not valid JSON")
	case json.Number:
		f, err := strconv.ParseFloat(string(t), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return nil, errors.New("statement is not valid JSON")
		}
		return f, nil
	case string, bool, nil:
		return t, nil
	}
	return nil, errors.New("statement is not valid JSON")
}

// statementOf parses c's statement about dgst after a verification
// succeeded, once. Invalid UTF-8 is refused as a whole: encoding/json
// would silently replace it.
func statementOf(c *candidate, dgst digest.Digest) (*statement, error) {
	if c.parsed == nil && c.parseErr == nil {
		if !utf8.Valid(c.statement) {
			c.parseErr = errors.New("statement is not valid UTF-8")
		} else {
			c.parsed, c.parseErr = parseStatement(c.statement, dgst)
		}
	}
	return c.parsed, c.parseErr
}

// attPlan is one attestation requirement of a rule, ready to check.
type attPlan struct {
	req       *policy.Attestation
	signers   []*policy.Signer
	checks    []*signerCheck
	condition *policy.Condition
	// unsatisfiable, when not empty, says why no statement could ever
	// satisfy the requirement (no usable signer, a condition that does
	// not compile).
	unsatisfiable []string
}

// planAttestations prepares the rule's attestation requirements.
func (s *Sigstore) planAttestations(rule *policy.Rule, check func(*policy.Signer) *signerCheck) []*attPlan {
	plans := make([]*attPlan, 0, len(rule.Attestations))
	for i, a := range rule.Attestations {
		p := &attPlan{req: a}
		plans = append(plans, p)
		if a == nil {
			p.req = &policy.Attestation{}
			p.unsatisfiable = append(p.unsatisfiable, fmt.Sprintf("attestation requirement %d is not configured", i+1))
			continue
		}
		p.signers = attestationSigners(rule, a)
		what := "attestation " + truncate(a.PredicateType, 200)
		if a.PredicateType == "" {
			p.unsatisfiable = append(p.unsatisfiable, fmt.Sprintf("attestation requirement %d has no predicate type", i+1))
		}
		switch {
		case a.Program != nil:
			p.condition = a.Program
		case a.Condition != "":
			c, err := policy.CompileCondition(a.Condition)
			if err != nil {
				p.unsatisfiable = append(p.unsatisfiable, fmt.Sprintf("%s: condition does not compile: %s", what, firstLine(err)))
			}
			p.condition = c
		}
		usable := 0
		var why []string
		for _, sg := range p.signers {
			sc := check(sg)
			p.checks = append(p.checks, sc)
			if sc.unsupported == "" {
				usable++
			} else {
				why = append(why, fmt.Sprintf("signer %q: %s", signerName(sg), sc.unsupported))
			}
		}
		if usable == 0 {
			line := what + ": no signer whose attestations count can be verified"
			if len(p.signers) == 0 {
				line = what + ": no signers whose attestations count"
			}
			p.unsatisfiable = append(p.unsatisfiable, line)
			for _, w := range why {
				p.unsatisfiable = append(p.unsatisfiable, what+": "+w)
			}
		}
	}
	return plans
}

// attestationSigners returns the signers whose statements count for a:
// its own list, or all of the rule's signers; without duplicates.
func attestationSigners(rule *policy.Rule, a *policy.Attestation) []*policy.Signer {
	in := a.Signers
	if len(in) == 0 {
		in = rule.Signers
	}
	out := make([]*policy.Signer, 0, len(in))
	for _, sg := range in {
		if !slices.Contains(out, sg) {
			out = append(out, sg)
		}
	}
	return out
}

// checkMemo remembers each (signer check, candidate) verification of
// one Verify, so a candidate checked for a signature and for several
// attestation requirements is verified once per signer.
type checkMemo map[memoKey]checkResult

type memoKey struct {
	sc *signerCheck
	c  *candidate
}

type checkResult struct {
	got    verified
	reason string
	err    error
}

func (m checkMemo) check(sc *signerCheck, c *candidate, dgst digest.Digest) checkResult {
	k := memoKey{sc, c}
	if r, ok := m[k]; ok {
		return r
	}
	var r checkResult
	r.got, r.reason, r.err = sc.check(c, dgst)
	m[k] = r
	return r
}

// decideAttestation checks one requirement against the candidates: it
// is satisfied by every DSSE statement that one of its signers
// verified, whose predicate type (read from the verified statement) is
// the requirement's, whose subject names the image, and for which the
// condition holds. It appends evidence for each such statement and
// returns whether there was one, and if not, the reasons.
func (s *Sigstore) decideAttestation(ctx context.Context, v *Verdict, p *attPlan, m material, memo checkMemo, now time.Time) (bool, []string) {
	want := p.req.PredicateType
	what := "attestation " + truncate(want, 200)
	perSigner := make([]tally, len(p.signers))
	var outcomes tally // of the condition, per verified statement
	relevant := 0
	others := map[string]bool{}
	satisfied := false
	for _, c := range m.candidates {
		if c.simpleSigning {
			continue
		}
		switch {
		case c.claimedType == want:
		case c.claimedType == "" && c.reject != "":
			// Unreadable material (oversize, missing, not a bundle):
			// it may have been this attestation.
		default:
			if c.dsse && c.claimedType != "" {
				others[c.claimedType] = true
			}
			continue
		}
		relevant++
		if c.reject != "" {
			for i := range perSigner {
				perSigner[i].add(c.reject)
			}
			continue
		}
		for i, sc := range p.checks {
			if sc.unsupported != "" {
				continue
			}
			r := memo.check(sc, c, v.Image.Digest)
			if r.reason != "" {
				perSigner[i].add(r.reason)
				s.cfg.logger.DebugContext(ctx, "attestation rejected", "image", v.Image.String(), "policy", v.Policy,
					"predicateType", want, "signer", signerName(p.signers[i]), "candidate", c.where, "reason", r.reason, "error", r.err)
				continue
			}
			st, err := statementOf(c, v.Image.Digest)
			if err != nil {
				perSigner[i].add(err.Error())
				continue
			}
			if st.predicateType != want {
				// Cannot happen (the claimed type comes from the same
				// bytes), but only the verified statement decides.
				perSigner[i].add(fmt.Sprintf("attestation of type %s", truncate(st.predicateType, 100)))
				continue
			}
			if p.condition != nil {
				ok, err := p.condition.Eval(ctx, policy.ConditionInput{
					PredicateType: st.predicateType, Subject: st.subject, Predicate: st.predicate, Now: now,
				})
				if err != nil {
					outcomes.add("error: " + truncate(err.Error(), 200))
					s.cfg.logger.DebugContext(ctx, "attestation condition failed", "image", v.Image.String(), "policy", v.Policy,
						"predicateType", want, "candidate", c.where, "condition", p.condition.String(), "error", err)
					break
				}
				if !ok {
					outcomes.add("false")
					break
				}
			}
			satisfied = true
			v.Evidence = append(v.Evidence, Evidence{
				Signer:          signerName(p.signers[i]),
				Layout:          c.layout,
				Artifact:        c.artifact,
				PredicateType:   st.predicateType,
				Requirement:     want,
				Condition:       oneLine(p.condition.String()),
				Identity:        r.got.identity,
				Issuer:          r.got.issuer,
				LogIndex:        r.got.logIndex,
				IntegratedTime:  r.got.integratedTime,
				SignedTimestamp: r.got.signedTime,
				TrustRoot:       evidenceRoot(sc, r.got),
			})
			break // one signer is enough: the statement counts once
		}
	}
	if satisfied {
		return true, nil
	}
	if outcomes.total > 0 {
		return false, []string{fmt.Sprintf("%s fails its condition %s: %s", what, truncate(oneLine(p.condition.String()), 300), outcomes.outcome())}
	}
	if relevant == 0 {
		line := "no attestation of type " + truncate(want, 200) + " found"
		if len(others) > 0 {
			types := make([]string, 0, len(others))
			for t := range others {
				types = append(types, t)
			}
			slices.Sort(types)
			if len(types) > 5 {
				types = append(types[:5], "…")
			}
			line += " (found: " + strings.Join(types, ", ") + ")"
		}
		return false, []string{line}
	}
	var reasons []string
	for i, sg := range p.signers {
		if sc := p.checks[i]; sc.unsupported != "" {
			reasons = append(reasons, fmt.Sprintf("no valid attestation of type %s from signer %q: %s", truncate(want, 200), signerName(sg), sc.unsupported))
			continue
		}
		reasons = append(reasons, fmt.Sprintf("no valid attestation of type %s from signer %q (%s)", truncate(want, 200), signerName(sg), perSigner[i].summaryOf("attestation")))
	}
	return false, reasons
}

// oneLine returns a condition for messages and evidence: on one line,
// with every run of white space (newlines of a YAML block included)
// collapsed into one space.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// evidenceRoot is the trusted root to name in evidence verified by sc.
func evidenceRoot(sc *signerCheck, got verified) string {
	if sc.keyless != nil || got.logIndex >= 0 {
		return sc.rootName
	}
	return ""
}
