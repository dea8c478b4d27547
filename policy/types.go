package policy

import (
	"crypto"
	"net/url"
	"time"
)

// Config is a parsed and validated pullgate configuration: where to
// listen, which upstreams exist, and the rules that decide which images
// are served. A Config is immutable once [Parse] returns it.
type Config struct {
	// File is the path the configuration was read from, as given to
	// [Parse]. It is used in messages only.
	File string
	// Listen is the address of the OCI API. The default is 127.0.0.1:5050.
	Listen string
	// TLS, when not nil, makes pullgate serve HTTPS.
	TLS *TLS
	// Upstreams are the only registries pullgate ever contacts.
	Upstreams []*Upstream
	// DefaultRegistry names the upstream used for requests that name
	// no registry (no ns parameter and no registry path prefix).
	// Empty means such requests are refused.
	DefaultRegistry string
	// TrustedRoot is the absolute path of the default Sigstore
	// trusted_root.json, or empty.
	TrustedRoot string
	// TrustRoots are additional named trusted roots (name → absolute path).
	TrustRoots map[string]string
	// TUF, when not nil, refreshes the default trusted root from a TUF
	// repository in the background.
	TUF *TUF
	// Policies are the rules, in file order.
	Policies []*Rule
	// Unmatched says what happens to images no rule names. The default
	// is [ActionDeny].
	Unmatched Action
	// Cache holds cache tuning.
	Cache Cache
	// Limits bounds what pullgate reads from upstreams.
	Limits Limits
	// Generation identifies this configuration and everything it
	// references (key files included): it is the hex SHA-256 over all of
	// those bytes. Verdicts are cached per generation, so a changed
	// policy never reuses an old verdict. Each part is preceded by its
	// length (a big-endian uint64) so that parts cannot run together:
	// the configuration file first, then every key file in file order.
	// Trusted roots are not included.
	Generation string

	// patterns are the compiled image patterns of all rules, most
	// specific first (file order among equals).
	patterns []rulePattern
}

// TLS names the certificate and key pullgate serves with.
type TLS struct {
	CertFile string // absolute path
	KeyFile  string // absolute path
}

// TUF configures an optional TUF client for the trusted root.
type TUF struct {
	// Mirror is the TUF repository URL.
	Mirror string
	// Root is the absolute path of the initial root.json.
	Root string
}

// Upstream is one registry pullgate may contact.
type Upstream struct {
	// Registry is the name images use for this registry, normalised by
	// [NormalizeRegistry] (so Docker Hub is always "docker.io"). containerd
	// sends it as the ns query parameter.
	Registry string
	// Endpoint is the base URL requests go to, e.g.
	// https://registry-1.docker.io. Only the scheme and host are used.
	Endpoint *url.URL
	// Auth, when not nil, holds the credentials for this upstream.
	// Nil means anonymous (with bearer tokens where the registry asks).
	Auth *Auth
	// CAFile is the absolute path of a PEM bundle of extra CAs trusted
	// for this upstream's TLS, or empty.
	CAFile string
}

// Auth locates upstream credentials. Exactly one of the two forms is set:
// Username with PasswordFile, or DockerConfig. The secret itself is never
// held in the Config: it is read from the file when needed, so rotated
// secrets are picked up and a Config can be logged safely.
type Auth struct {
	Username     string
	PasswordFile string // absolute path
	DockerConfig string // absolute path of a Docker config.json
}

// Mode says whether a rule blocks what it denies.
type Mode string

const (
	// ModeEnforce serves only what verified. It is the default.
	ModeEnforce Mode = "enforce"
	// ModeAudit serves what the rule would deny and logs the denial.
	// It weakens verification and is logged as such on every use.
	ModeAudit Mode = "audit"
)

// Action is the fate of images no rule matches.
type Action string

const (
	// ActionDeny refuses images no rule names. It is the default.
	ActionDeny Action = "deny"
	// ActionAllow serves images no rule names without verification.
	ActionAllow Action = "allow"
)

// TLogPolicy says whether a signer's signatures must be in a
// transparency log.
type TLogPolicy string

const (
	// TLogRequired rejects signatures without a verified log entry
	// (inclusion promise or inclusion proof). The default for keyless.
	TLogRequired TLogPolicy = "required"
	// TLogOptional verifies a log entry when one is present and the
	// trusted root knows the log, and accepts signatures without one.
	// The default for key signers.
	TLogOptional TLogPolicy = "optional"
	// TLogSkip ignores log entries entirely.
	TLogSkip TLogPolicy = "skip"
)

// Rule is one entry of policies: which images it governs and what they
// must carry to be served.
type Rule struct {
	// Name identifies the rule in denials and logs.
	Name string
	// Images are the normalised image patterns this rule governs, in
	// file order. "*" matches within one path segment, "**" one or more
	// whole segments; see [Config.Match] for the exact rules.
	Images []string
	// Mode is enforce or audit. The default is [ModeEnforce].
	Mode Mode
	// Signers are the identities this rule trusts, in file order.
	Signers []*Signer
	// Signatures says how many of which signers must have signed.
	Signatures Signatures
	// Attestations are the attestation requirements, all of which must
	// hold.
	Attestations []*Attestation
}

// Signer is one trusted identity: a public key or a keyless
// (Fulcio certificate) identity. Exactly one of Key and Keyless is set.
type Signer struct {
	// Name identifies the signer within its rule.
	Name string
	// Key is set for key signers.
	Key *Key
	// Keyless is set for keyless signers.
	Keyless *Keyless
	// TLog is the transparency-log requirement. The default is
	// [TLogRequired] for keyless signers and [TLogOptional] for keys.
	TLog TLogPolicy
}

// Key is a public key signer.
type Key struct {
	// Path is the absolute path the key was read from, or empty when it
	// was given inline.
	Path string
	// PEM is the PEM encoding as read.
	PEM []byte
	// PublicKey is the parsed key: *ecdsa.PublicKey (P-256, P-384 or
	// P-521), *rsa.PublicKey (at least 2048 bits) or ed25519.PublicKey.
	PublicKey crypto.PublicKey
}

// Keyless is a Fulcio certificate identity. Exactly one of Issuer and
// IssuerRegExp is set, and exactly one of Subject and SubjectRegExp.
// [Parse] checks that the regular expressions compile (Go RE2 syntax) and
// keeps them as written; a verifier must match with the anchored forms
// [Keyless.IssuerPattern] and [Keyless.SubjectPattern], which match only
// the whole value.
type Keyless struct {
	Issuer        string
	IssuerRegExp  string // as written, before anchoring
	Subject       string
	SubjectRegExp string // as written, before anchoring
	// Extensions are Fulcio certificate extensions that must have
	// exactly these values, keyed by the names sigstore-go's
	// certificate.Extensions uses in JSON (githubWorkflowRepository,
	// githubWorkflowRef, githubWorkflowSHA, githubWorkflowTrigger, …;
	// [ExtensionNames] lists them all). Values are never empty.
	Extensions map[string]string
	// TrustRoot names the trusted root (a key of [Config.TrustRoots]) to
	// verify against. Empty means [Config.TrustedRoot].
	TrustRoot string
}

// Signatures is a rule's signature requirement.
type Signatures struct {
	// Threshold is how many distinct signers of Signers must have a
	// valid signature on the image. 0 requires no signature; it must be
	// written out. The default is 1.
	Threshold int
	// Signers are the signers that count. The default is all of the
	// rule's signers.
	Signers []*Signer
}

// Attestation is one attestation requirement of a rule.
type Attestation struct {
	// PredicateType is the full predicate type URI (cosign shorthands
	// are expanded by [Parse]).
	PredicateType string
	// Signers are the signers whose attestations count. The default is
	// all of the rule's signers.
	Signers []*Signer
	// Condition is a CEL expression over the in-toto statement, as
	// written, or empty for none.
	Condition string
	// Program is Condition compiled by [Parse] (see [CompileCondition]),
	// or nil when there is no condition. A verifier given an Attestation
	// with a Condition but no Program compiles it itself.
	Program *Condition
}

// Cache tunes pullgate's caches: verdicts, tags and manifests in
// memory, blobs on disk.
type Cache struct {
	// VerdictTTL is how long an allow verdict is reused. The default
	// is 1h.
	VerdictTTL time.Duration
	// DenyTTL is how long a denial is reused. The default is 30s.
	DenyTTL time.Duration
	// MaxEntries bounds the verdict cache. The default is 100000.
	MaxEntries int
	// TagTTL is how long a tag's resolution to a digest is reused, so
	// that a burst of pulls of one tag costs one upstream lookup while a
	// moved tag is seen within TagTTL. 0 resolves every request
	// upstream. [Parse] sets 5s when the field is absent.
	TagTTL time.Duration
	// ManifestBytes bounds the in-memory cache of manifests by digest.
	// The default is 16 MiB.
	ManifestBytes int64
	// Dir is the absolute path of the on-disk blob cache, or empty for
	// none (blobs then stream from upstream for every request).
	Dir string
	// MaxBytes bounds the blobs kept in Dir. The default is 10 GiB.
	MaxBytes int64
}

// Limits bounds what pullgate reads from upstreams, so a hostile or
// broken upstream cannot exhaust it.
type Limits struct {
	// MaxManifestBytes caps a manifest's size. The default is 4 MiB.
	MaxManifestBytes int64
	// MaxSignatures caps how many signature or attestation candidates are
	// read per digest from each layout: layers of the .sig image, layers
	// of the .att image, and referrers (so at most three times as many in
	// all). The default is 64.
	MaxSignatures int
	// MaxSignatureBytes caps one signature payload, bundle or
	// attestation envelope (raise it for large SBOM attestations). The
	// default is 4 MiB.
	MaxSignatureBytes int64
}
