package policy

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// predicateShorthands are cosign's --type names for attestation predicate
// types.
var predicateShorthands = map[string]string{
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance1":  "https://slsa.dev/provenance/v1",
	"spdx":             "https://spdx.dev/Document",
	"spdxjson":         "https://spdx.dev/Document",
	"cyclonedx":        "https://cyclonedx.org/bom",
	"link":             "https://in-toto.io/Link/v1",
	"vuln":             "https://cosign.sigstore.dev/attestation/vuln/v1",
	"openvex":          "https://openvex.dev/ns",
	"custom":           "https://cosign.sigstore.dev/attestation/v1",
}

// ExpandPredicateType returns the predicate type URI s names: a cosign
// shorthand (slsaprovenance, slsaprovenance02, slsaprovenance1, spdx,
// spdxjson, cyclonedx, link, vuln, openvex, custom) is expanded to its
// URI, and an absolute URI (one with a scheme) is returned unchanged.
// Anything else is an error.
func ExpandPredicateType(s string) (string, error) {
	if uri, ok := predicateShorthands[s]; ok {
		return uri, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || strings.ContainsFunc(s, isSpaceOrControl) {
		names := make([]string, 0, len(predicateShorthands))
		for k := range predicateShorthands {
			names = append(names, k)
		}
		slices.Sort(names)
		return "", fmt.Errorf("predicate type %q is neither a URI nor one of %s", s, strings.Join(names, ", "))
	}
	return s, nil
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}
