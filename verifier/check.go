package verifier

import (
	"errors"
	"fmt"

	"github.com/pullgate/pullgate/policy"
)

// Check reports the features of cfg this verifier cannot enforce yet, so
// that the proxy refuses to start rather than silently not enforcing
// them: keyless signers, attestation requirements, key signers with
// tlog: required, and keys of unsupported types or sizes. It returns nil
// when everything is supported, and otherwise one error per problem,
// joined, each naming the policy and signer.
//
// [Sigstore.Verify] never allows what Check rejects: such a signer never
// counts as having signed, and a rule with attestation requirements is
// denied.
func Check(cfg *policy.Config) error {
	if cfg == nil {
		return nil
	}
	var errs []error
	for _, r := range cfg.Policies {
		if r == nil {
			continue
		}
		if len(r.Attestations) > 0 {
			errs = append(errs, fmt.Errorf("policy %q: attestation requirements are not supported yet", r.Name))
		}
		for _, sg := range r.Signers {
			if sg == nil {
				continue
			}
			if why := signerUnsupported(sg); why != "" {
				errs = append(errs, fmt.Errorf("signer %q in policy %q: %s", sg.Name, r.Name, why))
			}
		}
	}
	return errors.Join(errs...)
}

// signerUnsupported returns why sg cannot be enforced, or "".
func signerUnsupported(sg *policy.Signer) string {
	if why := unsupportedKind(sg); why != "" {
		return why
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

// unsupportedKind returns why a signer of sg's kind cannot be enforced,
// or "" for key signers (whose key still has to be checked).
func unsupportedKind(sg *policy.Signer) string {
	switch {
	case sg == nil:
		return "signer is not configured"
	case sg.Keyless != nil:
		return unsupportedKeyless
	case sg.Key == nil:
		return "signer has neither key nor keyless identity"
	case sg.TLog == policy.TLogRequired:
		return unsupportedTLogRequired
	}
	return ""
}
