package policy

import "slices"

// extensionNames are the JSON names of sigstore-go's
// certificate.Extensions fields (pkg/fulcio/certificate/extensions.go,
// v1.3.0), except issuer, which has its own fields in [Keyless].
var extensionNames = []string{
	"githubWorkflowTrigger",
	"githubWorkflowSHA",
	"githubWorkflowName",
	"githubWorkflowRepository",
	"githubWorkflowRef",
	"buildSignerURI",
	"buildSignerDigest",
	"runnerEnvironment",
	"sourceRepositoryURI",
	"sourceRepositoryDigest",
	"sourceRepositoryRef",
	"sourceRepositoryIdentifier",
	"sourceRepositoryOwnerURI",
	"sourceRepositoryOwnerIdentifier",
	"buildConfigURI",
	"buildConfigDigest",
	"buildTrigger",
	"runInvocationURI",
	"sourceRepositoryVisibilityAtSigning",
}

// ExtensionNames returns the keys [Keyless.Extensions] may have: the JSON
// field names of sigstore-go's certificate.Extensions, except "issuer".
// The slice is a fresh copy in a fixed order.
func ExtensionNames() []string {
	return slices.Clone(extensionNames)
}

// SubjectPattern returns SubjectRegExp anchored to match the whole
// subject, "^(?:" + SubjectRegExp + ")$", or "" when the identity names
// an exact Subject instead. Verifiers must match with this form, never
// with SubjectRegExp itself, which is unanchored as written.
func (k *Keyless) SubjectPattern() string {
	return anchor(k.SubjectRegExp)
}

// IssuerPattern returns IssuerRegExp anchored to match the whole issuer,
// "^(?:" + IssuerRegExp + ")$", or "" when the identity names an exact
// Issuer instead. Verifiers must match with this form, never with
// IssuerRegExp itself, which is unanchored as written.
func (k *Keyless) IssuerPattern() string {
	return anchor(k.IssuerRegExp)
}

func anchor(re string) string {
	if re == "" {
		return ""
	}
	return "^(?:" + re + ")$"
}
