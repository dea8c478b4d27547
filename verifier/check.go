package verifier

import (
	"errors"
	"fmt"
	"slices"

	"github.com/pullgate/pullgate/policy"
)

// Check reports what in cfg no verifier could enforce, from the
// configuration alone (no file is read), so that the proxy refuses to
// start rather than silently not enforcing it: attestation
// requirements without a predicate type or signers, or with a condition
// that does not compile (Parse compiles conditions; this catches rules
// built by hand); keyless signers without a trusted root (no trustedRoot
// and no tuf for the default root, or a trustRoot name that trustRoots
// does not define); key signers with tlog: required without a default
// trusted root (their log entries are checked against its Rekor keys);
// keys of unsupported types or sizes; and identities that do not
// compile. It returns nil when everything is supported, and otherwise
// one error per problem, joined, each naming the policy and signer.
//
// [Sigstore.Check] also checks the trusted material a verifier has
// loaded. [Sigstore.Verify] never allows what either rejects: such a
// signer never counts as having signed (nor attested), and a requirement
// that cannot be satisfied denies.
func Check(cfg *policy.Config) error {
	if cfg == nil {
		return nil
	}
	return checkRules(cfg, func(sg *policy.Signer) string { return configUnsupported(cfg, sg) })
}

// Check is the package-level [Check] for the trusted roots this
// verifier has: it also reports signers whose trusted root is not
// configured in the verifier, lacks what they need (a Fulcio CA for
// keyless signers, Rekor keys for tlog: required), or whose identity
// cannot be built. Roots that are configured but not available yet (a
// TUF fetch still pending) are not an error here: signers that need
// them fail closed until they are.
func (s *Sigstore) Check(cfg *policy.Config) error {
	if cfg == nil {
		return nil
	}
	snap := s.snapshot()
	return checkRules(cfg, func(sg *policy.Signer) string {
		if why := configUnsupported(cfg, sg); why != "" {
			return why
		}
		if sg.Keyless != nil {
			if st := snap.get(sg.Keyless.TrustRoot); st.configured && st.tm == nil {
				return ""
			}
		} else if sg.TLog == policy.TLogRequired {
			if st := snap.get(""); st.configured && st.tm == nil {
				return ""
			}
		}
		return s.signerCheck(sg, snap).unsupported
	})
}

func checkRules(cfg *policy.Config, unsupported func(*policy.Signer) string) error {
	var errs []error
	for _, r := range cfg.Policies {
		if r == nil {
			continue
		}
		signers := slices.Clone(r.Signers)
		for i, a := range r.Attestations {
			if a == nil {
				errs = append(errs, fmt.Errorf("policy %q: attestation requirement %d is not configured", r.Name, i+1))
				continue
			}
			what := fmt.Sprintf("attestation %s in policy %q", a.PredicateType, r.Name)
			if a.PredicateType == "" {
				errs = append(errs, fmt.Errorf("policy %q: attestation requirement %d has no predicate type", r.Name, i+1))
			}
			if a.Program == nil && a.Condition != "" {
				if _, err := policy.CompileCondition(a.Condition); err != nil {
					errs = append(errs, fmt.Errorf("%s: condition does not compile: %w", what, err))
				}
			}
			if len(attestationSigners(r, a)) == 0 {
				errs = append(errs, fmt.Errorf("%s: no signers whose attestations count", what))
			}
			for _, sg := range a.Signers {
				if !slices.Contains(signers, sg) {
					signers = append(signers, sg)
				}
			}
		}
		for _, sg := range signers {
			if sg == nil {
				continue
			}
			if why := unsupported(sg); why != "" {
				errs = append(errs, fmt.Errorf("signer %q in policy %q: %s", sg.Name, r.Name, why))
			}
		}
	}
	return errors.Join(errs...)
}

// configUnsupported returns why sg cannot be enforced under cfg, judging
// by the configuration alone, or "".
func configUnsupported(cfg *policy.Config, sg *policy.Signer) string {
	switch {
	case sg == nil:
		return "signer is not configured"
	case sg.Keyless != nil && sg.Key != nil:
		return "signer has both a key and a keyless identity"
	case sg.Keyless != nil:
		k := sg.Keyless
		switch {
		case k.TrustRoot == "" && cfg.TrustedRoot == "" && cfg.TUF == nil:
			return "keyless signer needs a trusted root (set trustedRoot or tuf), and none is configured"
		case k.TrustRoot != "" && cfg.TrustRoots[k.TrustRoot] == "":
			return fmt.Sprintf("trusted root %q is not defined in trustRoots", k.TrustRoot)
		}
		if _, err := certificateIdentity(k); err != nil {
			return firstLine(err)
		}
		return ""
	case sg.Key == nil:
		return "signer has neither key nor keyless identity"
	}
	if sg.TLog == policy.TLogRequired && cfg.TrustedRoot == "" && cfg.TUF == nil {
		return "tlog: required needs a trusted root with the transparency log's key (set trustedRoot or tuf), and none is configured"
	}
	pub, err := signerPublicKey(sg.Key)
	if err != nil {
		return err.Error()
	}
	if _, err := keyVerifier(pub); err != nil {
		return err.Error()
	}
	return ""
}
