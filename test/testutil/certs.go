package testutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// CA is a throw-away certificate authority for TLS tests: a self-signed
// root made in memory, its certificate in File (PEM) and Pool.
type CA struct {
	Cert *x509.Certificate
	File string // PEM certificate, for tls_ca_file
	Pool *x509.CertPool
	key  *ecdsa.PrivateKey
	dir  string
}

// Leaf is a certificate the CA issued (for 127.0.0.1, ::1 and localhost,
// or for the names IssueFor was given), with its PEM files and the pair
// ready for a tls.Config.
type Leaf struct {
	Cert     *x509.Certificate
	CertFile string // PEM chain: the leaf (tls_cert)
	KeyFile  string // PEM PKCS#8 private key (tls_key)
	Pair     tls.Certificate
}

// NewCA makes a CA whose files live in a directory removed with the test.
func NewCA(t testing.TB) *CA {
	t.Helper()
	key, der, cert := newCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "webconf test CA"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil, nil)
	dir := t.TempDir()
	ca := &CA{Cert: cert, key: key, dir: dir, File: filepath.Join(dir, "ca.pem"), Pool: x509.NewCertPool()}
	ca.Pool.AddCert(cert)
	writePEM(t, ca.File, "CERTIFICATE", der)
	return ca
}

// Issue makes a server and client certificate for 127.0.0.1, ::1 and
// localhost, written as name-cert.pem and name-key.pem in the CA's
// directory (an existing pair of that name is replaced, as an operator
// replaces files before SIGHUP: each file is written whole and renamed).
func (ca *CA) Issue(t testing.TB, name string) *Leaf {
	t.Helper()
	return ca.issue(t, name, "localhost", []string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback})
}

// IssueFor makes a server and client certificate naming only the host
// names given (no IP address, as a real certificate has), written as
// Issue writes its files.
func (ca *CA) IssueFor(t testing.TB, name string, hosts ...string) *Leaf {
	t.Helper()
	if len(hosts) == 0 {
		t.Fatal("IssueFor: no host name")
	}
	return ca.issue(t, name, hosts[0], hosts, nil)
}

func (ca *CA) issue(t testing.TB, name, cn string, dnsNames []string, ips []net.IP) *Leaf {
	t.Helper()
	key, der, cert := newCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}, ca.Cert, ca.key)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	l := &Leaf{Cert: cert, CertFile: filepath.Join(ca.dir, name+"-cert.pem"), KeyFile: filepath.Join(ca.dir, name+"-key.pem")}
	writePEM(t, l.CertFile, "CERTIFICATE", der)
	writePEM(t, l.KeyFile, "PRIVATE KEY", keyDER)
	l.Pair = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}
	return l
}

// ServerConfig serves the leaf and trusts the CA (for a test peer that
// both listens and dials over TLS).
func (ca *CA) ServerConfig(l *Leaf) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{l.Pair}, RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}
}

// newCert makes a P-256 key and a certificate of tmpl for it, with a
// random serial number, valid from an hour ago for a day, signed by
// parent's key (self-signed when parent is nil).
func newCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, []byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return key, der, cert
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
