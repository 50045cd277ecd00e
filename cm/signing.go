package cm

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strings"

	"github.com/smallstep/pkcs7"
)

// cmsSigner signs PGWY's dataToSign as an officer: a DER CMS SignedData
// (RFC 5652) with the data encapsulated, SHA-256, the standard signed
// attributes and the signer's chain, as `openssl cms -sign -nodetach
// -binary` makes it.
type cmsSigner struct {
	cert    *x509.Certificate
	parents []*x509.Certificate
	key     crypto.PrivateKey
}

func newCMSSigner(pair tls.Certificate) (*cmsSigner, error) {
	s := &cmsSigner{cert: pair.Leaf, key: pair.PrivateKey}
	for i, der := range pair.Certificate {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("signer certificate %d: %w", i, err)
		}
		if i == 0 {
			s.cert = c
		} else {
			s.parents = append(s.parents, c)
		}
	}
	return s, nil
}

// sign returns the DER CMS SignedData over data.
func (s *cmsSigner) sign(data []byte) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(data)
	if err != nil {
		return nil, err
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSignerChain(s.cert, s.key, s.parents, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, err
	}
	return sd.Finish()
}

// challengeOf returns the data PGWY asks the caller to sign, when a 2xx
// answer is such a request (a JSON body with dataToSign).
func challengeOf(a answer) ([]byte, bool, error) {
	mt, _, _ := mime.ParseMediaType(a.contentType)
	if mt != "application/json" && !strings.HasPrefix(strings.TrimSpace(string(a.body)), "{") {
		return nil, false, nil
	}
	var ch SignChallenge
	if err := json.Unmarshal(a.body, &ch); err != nil {
		return nil, false, errors.New("answer is JSON that cannot be read")
	}
	if ch.DataToSign == "" {
		return nil, false, errors.New("answer is JSON without dataToSign")
	}
	data, err := base64.StdEncoding.DecodeString(ch.DataToSign)
	if err != nil || len(data) == 0 {
		return nil, false, errors.New("dataToSign is not base64")
	}
	return data, true, nil
}
