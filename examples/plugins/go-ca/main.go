// Command go-ca is an external camblet-agent CA plugin written in Go with the standard library
// only. It shows that the plugin protocol (JSON-RPC 2.0, one message per line on stdin/stdout,
// see docs/plugins.md) is language-neutral.
//
// Config (plugins.external[].config):
//
//	maxTtlSeconds  longest leaf (default 86400)
//	commonName     CN of the in-memory root (default "Go example CA")
package main

import (
	"bufio"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"sync"
	"time"
)

const (
	protocol        = "camblet-plugin"
	protocolVersion = 1

	errInvalidParams  = -32602
	errMethodNotFound = -32601
	errInternal       = -32603
	errBadConfig      = 1001
	errCsrRejected    = 1002
)

type request struct {
	ID     json.RawMessage `json:"id,omitempty"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return e.Message }

type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type ca struct {
	mu     sync.RWMutex
	cert   *x509.Certificate
	key    *rsa.PrivateKey
	maxTTL time.Duration
}

func randomSerial() (*big.Int, error) {
	// 20 bytes with the top bit clear: a positive serial of at least 158 random bits.
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	b[0] = b[0]&0x7f | 0x40
	return new(big.Int).SetBytes(b), nil
}

func (c *ca) configure(raw json.RawMessage) (any, error) {
	var p struct {
		Config struct {
			MaxTTLSeconds int    `json:"maxTtlSeconds"`
			CommonName    string `json:"commonName"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, &rpcError{Code: errBadConfig, Message: "invalid config: " + err.Error()}
	}
	if p.Config.MaxTTLSeconds < 0 {
		return nil, &rpcError{Code: errBadConfig, Message: "invalid config",
			Data: map[string]any{"problems": []map[string]string{{"field": "maxTtlSeconds", "message": "must be positive"}}}}
	}
	if p.Config.MaxTTLSeconds == 0 {
		p.Config.MaxTTLSeconds = 86400
	}
	if p.Config.CommonName == "" {
		p.Config.CommonName = "Go example CA"
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: p.Config.CommonName},
		NotBefore:             now.Add(-2 * time.Minute),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.cert, c.key, c.maxTTL = cert, key, time.Duration(p.Config.MaxTTLSeconds)*time.Second
	c.mu.Unlock()
	fmt.Fprintln(os.Stderr, "generated an in-memory root:", cert.Subject.CommonName)
	return map[string]any{"maxTtlSeconds": p.Config.MaxTTLSeconds}, nil
}

func (c *ca) sign(raw json.RawMessage) (any, error) {
	var p struct {
		CSR        string   `json:"csr"`
		SpiffeID   string   `json:"spiffeId"`
		DNSNames   []string `json:"dnsNames"`
		TTLSeconds int      `json:"ttlSeconds"`
	}
	if err := json.Unmarshal(raw, &p); err != nil || p.TTLSeconds <= 0 {
		return nil, &rpcError{Code: errInvalidParams, Message: "ca.sign needs csr, spiffeId and ttlSeconds"}
	}
	block, _ := pem.Decode([]byte(p.CSR))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, &rpcError{Code: errCsrRejected, Message: "Cannot parse CSR: no CERTIFICATE REQUEST PEM block"}
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, &rpcError{Code: errCsrRejected, Message: "Cannot parse CSR: " + err.Error()}
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, &rpcError{Code: errCsrRejected, Message: "Cannot sign CSR: its signature does not verify: " + err.Error()}
	}
	uri, err := url.Parse(p.SpiffeID)
	if err != nil {
		return nil, &rpcError{Code: errInvalidParams, Message: "bad spiffeId: " + err.Error()}
	}
	c.mu.RLock()
	root, key, maxTTL := c.cert, c.key, c.maxTTL
	c.mu.RUnlock()
	ttl := time.Duration(p.TTLSeconds) * time.Second
	if ttl > maxTTL {
		ttl = maxTTL
	}
	now := time.Now()
	notAfter := now.Add(ttl)
	if notAfter.After(root.NotAfter) {
		notAfter = root.NotAfter
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               csr.Subject,
		NotBefore:             now.Add(-2 * time.Minute),
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  false,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:                  []*url.URL{uri},
		DNSNames:              p.DNSNames,
		// PKCS#1 v1.5: the kernel's BearSSL cannot verify RSA-PSS.
		SignatureAlgorithm: x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, csr.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return map[string]any{"certificate": der, "chain": [][]byte{}, "trustAnchors": [][]byte{root.Raw}}, nil
}

func (c *ca) handle(req request) (any, error) {
	switch req.Method {
	case "plugin.handshake":
		var p struct {
			Protocol string `json:"protocol"`
			Versions []int  `json:"versions"`
			Kind     string `json:"kind"`
		}
		_ = json.Unmarshal(req.Params, &p)
		ok := false
		for _, v := range p.Versions {
			ok = ok || v == protocolVersion
		}
		if p.Protocol != protocol || !ok || p.Kind != "ca" {
			return nil, &rpcError{Code: errInvalidParams, Message: fmt.Sprintf(
				"Cannot speak %s %v as %s: this plugin is a ca plugin speaking %s %d", p.Protocol, p.Versions, p.Kind, protocol, protocolVersion)}
		}
		return map[string]any{"protocol": protocol, "version": protocolVersion, "kind": "ca", "pluginVersion": "0.1.0"}, nil
	case "plugin.configure":
		return c.configure(req.Params)
	case "plugin.health":
		c.mu.RLock()
		defer c.mu.RUnlock()
		return map[string]any{"ok": c.cert != nil}, nil
	case "ca.sign":
		return c.sign(req.Params)
	case "ca.trustBundle":
		c.mu.RLock()
		defer c.mu.RUnlock()
		if c.cert == nil {
			return nil, &rpcError{Code: errInternal, Message: "not configured"}
		}
		return map[string]any{"trustAnchors": [][]byte{c.cert.Raw}}, nil
	}
	return nil, &rpcError{Code: errMethodNotFound, Message: fmt.Sprintf("Unknown method %q", req.Method)}
}

func main() {
	c := &ca{}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	var outMu sync.Mutex
	enc := json.NewEncoder(os.Stdout) // Encode writes one line per value; []byte becomes base64.
	send := func(r response) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = enc.Encode(r)
	}
	var wg sync.WaitGroup
	for {
		line, err := in.ReadBytes('\n')
		if len(line) > 0 {
			var req request
			if jerr := json.Unmarshal(line, &req); jerr != nil {
				send(response{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: -32700, Message: jerr.Error()}})
			} else if req.Method == "plugin.shutdown" {
				wg.Wait()
				send(response{JSONRPC: "2.0", ID: req.ID, Result: map[string]any{}})
				return
			} else {
				wg.Add(1)
				go func(req request) {
					defer wg.Done()
					result, herr := c.handle(req)
					if req.ID == nil {
						return
					}
					r := response{JSONRPC: "2.0", ID: req.ID, Result: result}
					var re *rpcError
					if errors.As(herr, &re) {
						r.Result, r.Error = nil, re
					} else if herr != nil {
						r.Result, r.Error = nil, &rpcError{Code: errInternal, Message: herr.Error()}
					}
					send(r)
				}(req)
			}
		}
		if err != nil {
			wg.Wait()
			return
		}
	}
}
