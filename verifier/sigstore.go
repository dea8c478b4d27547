package verifier

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/pullgate/pullgate/policy"
)

// Sigstore verifies image digests against policy rules with sigstore-go.
// It is safe for concurrent use; build one with [New] and share it.
type Sigstore struct {
	cfg config
	// checks caches one *signerCheck per distinct signer configuration.
	checks sync.Map
}

// noSignatureReason is the denial when no signature material exists at
// all. It says where pullgate looked; the image and digest are named by
// whoever shows the verdict.
const noSignatureReason = "no signature found (no cosign .sig tag, no Sigstore bundle among the referrers)"

// New returns a verifier configured by opts. It does no I/O.
func New(opts ...Option) (*Sigstore, error) {
	c := config{
		logger: slog.New(slog.DiscardHandler),
		limits: policy.Limits{
			MaxManifestBytes:  DefaultMaxManifestBytes,
			MaxSignatures:     DefaultMaxSignatures,
			MaxSignatureBytes: DefaultMaxSignatureBytes,
		},
		now: time.Now,
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, fmt.Errorf("verifier: %w", err)
		}
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	return &Sigstore{cfg: c}, nil
}

// Verify discovers signature material for img in src and checks it
// against rule: its signature threshold and every one of its
// attestation requirements.
//
// It returns a non-nil *Verdict and a nil error when it could decide,
// whether the verdict allows or denies. It returns a nil verdict and an
// error when it could not decide because fetching failed (any Source
// error other than [ErrNotFound] and [ErrTooLarge], or ctx ending),
// unless the material it did fetch already satisfies the rule: missing
// material can only add evidence, so it allows then. It never returns an
// allowed verdict on an error path.
//
// A rule with threshold 0 and no attestation requirements is allowed
// without contacting src. Signers this verifier cannot enforce (see
// [Sigstore.Check]; also signers whose trusted root is not available
// yet) never count as having signed, and a requirement none of whose
// signers can be enforced (or whose condition does not compile) denies
// without contacting src.
//
// Each trusted root is read once, when Verify starts: one verdict is
// always judged against one generation of each root (see
// [Sigstore.Generation]). Conditions see that start time as now.
// Verify does no I/O but through src.
func (s *Sigstore) Verify(ctx context.Context, src Source, img Image, rule *policy.Rule) (*Verdict, error) {
	start := s.cfg.now()
	if rule == nil {
		return nil, fmt.Errorf("verify %s: no rule", img)
	}
	if err := img.Digest.Validate(); err != nil || img.Digest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("verify %s: digest is not a valid sha256 digest", img)
	}
	v := &Verdict{Image: img, Policy: rule.Name}
	done := func() *Verdict {
		v.Duration = s.cfg.now().Sub(start)
		return v
	}
	threshold := max(rule.Signatures.Threshold, 0)
	if threshold == 0 && len(rule.Attestations) == 0 {
		v.Allowed = true
		return done(), nil
	}

	snap := s.snapshot()
	checkOf := func(sg *policy.Signer) *signerCheck { return s.signerCheck(sg, snap) }
	var signers []*policy.Signer
	var checks []*signerCheck
	if threshold > 0 {
		signers = countedSigners(rule)
		checks = make([]*signerCheck, len(signers))
		usable := map[string]bool{}
		for i, sg := range signers {
			checks[i] = checkOf(sg)
			if checks[i].unsupported == "" {
				usable[checks[i].identity] = true
			}
		}
		if len(usable) < threshold {
			// No material could satisfy the rule: say why without fetching.
			v.Reasons = unsatisfiable(threshold, signers, checks)
		}
	}
	plans := s.planAttestations(rule, checkOf)
	for _, p := range plans {
		v.Reasons = append(v.Reasons, p.unsatisfiable...)
	}
	if len(v.Reasons) > 0 {
		return done(), nil
	}
	if src == nil {
		return nil, fmt.Errorf("verify %s: no source", img)
	}

	m := s.discover(ctx, src, img, threshold > 0, len(plans) > 0)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("verify %s: %w", img, err)
	}
	memo := checkMemo{}
	allowed := true
	if threshold > 0 {
		allowed = s.decide(ctx, v, threshold, signers, checks, m, memo)
	}
	for _, p := range plans {
		ok, reasons := s.decideAttestation(ctx, v, p, m, memo, start)
		allowed = allowed && ok
		v.Reasons = append(v.Reasons, reasons...)
	}
	if err := ctx.Err(); err != nil {
		// A condition may have failed because ctx ended: not a denial.
		return nil, fmt.Errorf("verify %s: %w", img, err)
	}
	if allowed {
		v.Allowed, v.Reasons = true, nil
	} else {
		v.Reasons = append(v.Reasons, m.notes...)
	}
	if len(m.errs) > 0 {
		err := fetchErrors(m.errs)
		if !v.Allowed {
			return nil, fmt.Errorf("verify %s: %w", img, err)
		}
		s.cfg.logger.DebugContext(ctx, "allowed although some signature material could not be fetched",
			"image", img.String(), "policy", rule.Name, "error", err)
	}
	return done(), nil
}

// countedSigners returns the signers whose signatures count towards the
// threshold, without duplicates: Signatures.Signers, or all of the rule's
// signers when that is empty.
func countedSigners(rule *policy.Rule) []*policy.Signer {
	in := rule.Signatures.Signers
	if len(in) == 0 {
		in = rule.Signers
	}
	out := make([]*policy.Signer, 0, len(in))
	seen := map[*policy.Signer]bool{}
	for _, sg := range in {
		if !seen[sg] {
			seen[sg] = true
			out = append(out, sg)
		}
	}
	return out
}

// unsatisfiable explains a rule that fewer than threshold signers could
// ever satisfy.
func unsatisfiable(threshold int, signers []*policy.Signer, checks []*signerCheck) []string {
	reasons := []string{fmt.Sprintf("%d distinct signer(s) required but only %d can be verified", threshold, countUsable(checks))}
	byKey := map[string][]string{}
	var keys []string
	for i, sg := range signers {
		c := checks[i]
		if c.unsupported != "" {
			reasons = append(reasons, fmt.Sprintf("signer %q: %s", signerName(sg), c.unsupported))
			continue
		}
		if byKey[c.identity] == nil {
			keys = append(keys, c.identity)
		}
		byKey[c.identity] = append(byKey[c.identity], signerName(sg))
	}
	for _, k := range keys {
		if names := byKey[k]; len(names) > 1 {
			what := "key"
			if strings.HasPrefix(k, "keyless:") {
				what = "keyless identity"
			}
			reasons = append(reasons, fmt.Sprintf("signers %s share one %s and count once", quoteList(names), what))
		}
	}
	return reasons
}

func countUsable(checks []*signerCheck) int {
	ids := map[string]bool{}
	for _, c := range checks {
		if c.unsupported == "" {
			ids[c.identity] = true
		}
	}
	return len(ids)
}

func signerName(sg *policy.Signer) string {
	if sg == nil {
		return ""
	}
	return sg.Name
}

// decide checks every candidate that may be a signature (not the .att
// layers) against every counted signer, appends the evidence and, when
// fewer than threshold signers signed, the reasons to v. It reports
// whether the threshold is met. It is the pure core: no I/O, only the
// material in m.
func (s *Sigstore) decide(ctx context.Context, v *Verdict, threshold int, signers []*policy.Signer, checks []*signerCheck, m material, memo checkMemo) bool {
	log := s.cfg.logger
	cands := make([]*candidate, 0, len(m.candidates))
	for _, c := range m.candidates {
		if c.layout != LayoutAttTag {
			cands = append(cands, c)
		}
	}
	var have []string
	satisfied := map[string]bool{} // by signer identity
	missing := make([]string, 0, len(signers))
	var perSigner []string
	for i, sg := range signers {
		sc := checks[i]
		name := signerName(sg)
		if sc.unsupported != "" {
			missing = append(missing, name)
			perSigner = append(perSigner, fmt.Sprintf("no valid signature from signer %q: %s", name, sc.unsupported))
			continue
		}
		var failures tally
		ok := false
		for _, c := range cands {
			if c.reject != "" {
				failures.add(c.reject)
				continue
			}
			r := memo.check(sc, c, v.Image.Digest)
			got, reason, err := asSignature(c, r.got, r.reason, r.err)
			if reason != "" {
				failures.add(reason)
				log.DebugContext(ctx, "signature rejected", "image", v.Image.String(), "policy", v.Policy,
					"signer", name, "candidate", c.where, "reason", reason, "error", err)
				continue
			}
			ok = true
			v.Evidence = append(v.Evidence, Evidence{
				Signer:          name,
				Layout:          c.layout,
				Artifact:        c.artifact,
				PredicateType:   got.predicateType,
				Identity:        got.identity,
				Issuer:          got.issuer,
				LogIndex:        got.logIndex,
				IntegratedTime:  got.integratedTime,
				SignedTimestamp: got.signedTime,
				TrustRoot:       evidenceRoot(sc, got),
			})
		}
		if ok {
			have = append(have, name)
			satisfied[sc.identity] = true
			continue
		}
		missing = append(missing, name)
		if len(cands) > 0 {
			perSigner = append(perSigner, fmt.Sprintf("no valid signature from signer %q (%s)", name, failures.summary()))
		}
	}
	for _, c := range m.candidates {
		if c.reject != "" {
			log.DebugContext(ctx, "signature material rejected", "image", v.Image.String(), "candidate", c.where, "reason", c.reject)
		}
	}

	if len(satisfied) >= threshold {
		return true
	}
	if len(cands) == 0 {
		v.Reasons = append(v.Reasons, noSignatureReason)
		for i, sg := range signers {
			if checks[i].unsupported != "" {
				v.Reasons = append(v.Reasons, fmt.Sprintf("signer %q: %s", signerName(sg), checks[i].unsupported))
			}
		}
	} else {
		if threshold > 1 || len(signers) > 1 {
			v.Reasons = append(v.Reasons, thresholdLine(threshold, len(satisfied), have, missing))
		}
		v.Reasons = append(v.Reasons, perSigner...)
	}
	return false
}

// thresholdLine summarises a missed threshold, e.g.
// `1 of 2 required signers: have "a"; missing "b"`.
func thresholdLine(threshold, satisfied int, have, missing []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d of %d required signers", satisfied, threshold)
	sep := ": "
	if len(have) > 0 {
		fmt.Fprintf(&b, "%shave %s", sep, quoteList(have))
		if satisfied < len(have) {
			b.WriteString(" (signers sharing a key count once)")
		}
		sep = "; "
	}
	if len(missing) > 0 {
		fmt.Fprintf(&b, "%smissing %s", sep, quoteList(missing))
	}
	return b.String()
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

// tally counts failure reasons in order of first appearance.
type tally struct {
	order []string
	n     map[string]int
	total int
}

func (t *tally) add(reason string) {
	if t.n == nil {
		t.n = map[string]int{}
	}
	if t.n[reason] == 0 {
		t.order = append(t.order, reason)
	}
	t.n[reason]++
	t.total++
}

// summary renders e.g. "1 signature found: signed by another key" or
// "3 signatures found: 2 signed by another key; 1 signature payload names …".
func (t *tally) summary() string { return t.summaryOf("signature") }

// summaryOf is summary for another noun ("attestation").
func (t *tally) summaryOf(noun string) string {
	found := fmt.Sprintf("%d %s found", t.total, noun)
	if t.total != 1 {
		found = fmt.Sprintf("%d %ss found", t.total, noun)
	}
	if len(t.order) == 1 {
		return found + ": " + t.order[0]
	}
	const maxShown = 5
	parts := make([]string, 0, maxShown+1)
	for i, r := range t.order {
		if i == maxShown {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%d %s", t.n[r], r))
	}
	return found + ": " + strings.Join(parts, "; ")
}

// outcome renders the outcomes of a condition over the statements it
// judged: "false" or "error: …" for one statement, else e.g.
// "2 statements: 1 false; 1 error: no such key: builder".
func (t *tally) outcome() string {
	if t.total == 1 {
		return t.order[0]
	}
	const maxShown = 5
	parts := make([]string, 0, maxShown+1)
	for i, r := range t.order {
		if i == maxShown {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, fmt.Sprintf("%d %s", t.n[r], r))
	}
	return fmt.Sprintf("%d statements: %s", t.total, strings.Join(parts, "; "))
}

// fetchErrors are the faults of one discovery, reported as one line.
type fetchErrors []error

func (e fetchErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e fetchErrors) Unwrap() []error { return e }
