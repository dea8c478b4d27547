package verifier

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/opencontainers/go-digest"
)

// simpleSigningType is the only critical.type cosign writes and accepts
// for image signatures (sigstore/sigstore pkg/signature/payload).
const simpleSigningType = "cosign container image signature"

// simpleSigning is the signed payload of a legacy cosign image
// signature.
type simpleSigning struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// parseSimpleSigning parses a simple-signing payload. It checks the shape
// only; [checkSimpleSigning] checks the claims.
func parseSimpleSigning(payload []byte) (*simpleSigning, error) {
	var ss simpleSigning
	if err := json.Unmarshal(payload, &ss); err != nil {
		return nil, errors.New("signature payload is not simple-signing JSON")
	}
	return &ss, nil
}

// checkSimpleSigning enforces the claims of a simple-signing payload
// that sigstore-go does not look at: the payload must be a cosign image
// signature, and it must name exactly dgst. Without the digest check a
// valid signature of any other image, copied under this image's .sig
// tag, would pass.
//
// critical.identity.docker-reference is deliberately not checked: cosign
// does not check it either (pkg/cosign/verifiers.go SimpleClaimVerifier),
// and it rarely matches what the proxy sees. It defaults to ggcr's
// Repository.Name() (index.docker.io/library/nginx for docker.io images),
// older cosign wrote only the repository, --sign-container-identity
// overrides it, and images are routinely copied between registries and
// served under mirror names. The digest binds the signature to the
// content, which is what the proxy serves.
func checkSimpleSigning(payload []byte, dgst digest.Digest) error {
	ss, err := parseSimpleSigning(payload)
	if err != nil {
		return err
	}
	if ss.Critical.Type != simpleSigningType {
		return fmt.Errorf("signature payload type is %q, not %q", truncate(ss.Critical.Type, 80), simpleSigningType)
	}
	if got := ss.Critical.Image.DockerManifestDigest; got != dgst.String() {
		if got == "" {
			return errors.New("signature payload names no digest")
		}
		return fmt.Errorf("signature payload names digest %s not %s", truncate(got, 80), dgst)
	}
	return nil
}
