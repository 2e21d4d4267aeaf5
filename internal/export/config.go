package export

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Sink types.
const (
	TypeSyslog   = "syslog"
	TypeSplunk   = "splunk-hec"
	TypeElastic  = "elasticsearch"
	TypeOCSFFile = "ocsf-file"
	TypeOCSFHTTP = "ocsf-http"
	TypeWebhook  = "webhook"
)

// Defaults.
const (
	DefaultBuffer     = 10000
	DefaultBatch      = 500
	DefaultTimeout    = 10 * time.Second
	DefaultBackoffMin = 500 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
	DefaultMaxSize    = 100 << 20
	DefaultMaxFiles   = 5
	// MaxBuffer bounds a sink's buffer (its slots are allocated up front).
	MaxBuffer = 10_000_000
)

// SinkConfig configures one sink. Zero fields take their defaults.
type SinkConfig struct {
	// Name tells sinks apart in Stats and logs; default: the type.
	Name string `yaml:"name"`
	// Type is one of syslog, splunk-hec, elasticsearch, ocsf-file,
	// ocsf-http, webhook.
	Type string `yaml:"type"`
	// Address is host:port for syslog; URL the base URL of the HTTP sinks
	// (Splunk HEC and Elasticsearch without their API path; the full URL
	// for ocsf-http and webhook); Path the ocsf-file's file.
	Address string `yaml:"address"`
	URL     string `yaml:"url"`
	Path    string `yaml:"path"`
	// Network is syslog's transport: tcp (default), tls or udp.
	Network string `yaml:"network"`
	// Format is syslog's payload: "json" (default: RFC 5424 structured
	// data and a JSON message) or "cef"; for ocsf-http "ndjson" (default)
	// or "array"; for splunk-hec and webhook "vigil" (default) or "ocsf".
	Format string `yaml:"format"`
	// Facility is syslog's facility number (default 16, local0); AppName
	// its APP-NAME (default "vigil").
	Facility int    `yaml:"facility"`
	AppName  string `yaml:"app_name"`
	// Framing is how TCP/TLS syslog separates messages: "octet-counting"
	// (default; RFC 6587 3.4.1 and RFC 5425) or "newline" (RFC 6587
	// 3.4.2, for receivers that only split on LF; Vigil's messages never
	// hold a raw newline).
	Framing string `yaml:"framing"`

	TLS TLSConfig `yaml:"tls"`

	// Splunk HEC: Token (or the environment variable TokenEnv names),
	// Index (optional), Source (default "vigil"), Sourcetype (default
	// "vigil:<kind>").
	Token      string `yaml:"token"`
	TokenEnv   string `yaml:"token_env"`
	Index      string `yaml:"index"`
	Source     string `yaml:"source"`
	Sourcetype string `yaml:"sourcetype"`

	// Elasticsearch: basic auth (Username, Password or PasswordEnv) or
	// APIKey (APIKeyEnv): the base64 "id:key" sent as "ApiKey <key>".
	// IndexPrefix (default "vigil") makes daily indices
	// "<prefix>-<kind>s-YYYY.MM.DD"; DataStream writes to the data stream
	// "logs-<prefix>.<kind>s-default" instead.
	Username    string `yaml:"username"`
	Password    string `yaml:"password"`
	PasswordEnv string `yaml:"password_env"`
	APIKey      string `yaml:"api_key"`
	APIKeyEnv   string `yaml:"api_key_env"`
	IndexPrefix string `yaml:"index_prefix"`
	DataStream  bool   `yaml:"data_stream"`

	// Webhook: the shared Secret (or SecretEnv) the body is signed with.
	Secret    string `yaml:"secret"`
	SecretEnv string `yaml:"secret_env"`
	// Headers are added to every HTTP request.
	Headers map[string]string `yaml:"headers"`

	// ocsf-file: rotate when the file would pass MaxSize bytes (default
	// 100 MiB), keeping MaxFiles old files (default 5): path.1 … path.N.
	MaxSize  int64 `yaml:"max_size"`
	MaxFiles int   `yaml:"max_files"`

	// Kinds limits the sink to these item kinds (alert, response,
	// finding, compliance); empty sends all. MinPriority drops alerts
	// less severe than this Falco priority (e.g. "warning" keeps
	// emergency … warning); empty keeps all.
	Kinds       []string `yaml:"kinds"`
	MinPriority string   `yaml:"min_priority"`

	// Buffer is how many items wait at most (default 10000); Batch how
	// many are sent at once (default 500); Timeout bounds one attempt
	// (default 10s); failed attempts are retried after BackoffMin doubling
	// up to BackoffMax, with jitter; MaxAttempts > 0 gives up (dropping
	// the items) after that many attempts, 0 retries until Close.
	Buffer      int           `yaml:"buffer"`
	Batch       int           `yaml:"batch"`
	Timeout     time.Duration `yaml:"timeout"`
	BackoffMin  time.Duration `yaml:"backoff_min"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
	MaxAttempts int           `yaml:"max_attempts"`
}

// TLSConfig is a sink's TLS client setup.
type TLSConfig struct {
	// CA is a PEM file of the CAs to trust (default: the system's).
	CA string `yaml:"ca"`
	// Cert and Key are a PEM client certificate and key, both or neither.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// Insecure skips verifying the server's certificate.
	Insecure   bool   `yaml:"insecure_skip_verify"`
	ServerName string `yaml:"server_name"`
}

func (c SinkConfig) withDefaults() (SinkConfig, error) {
	if c.Name == "" {
		c.Name = c.Type
	}
	if c.Buffer <= 0 {
		c.Buffer = DefaultBuffer
	}
	if c.Buffer > MaxBuffer {
		return c, fmt.Errorf("buffer %d: at most %d items", c.Buffer, MaxBuffer)
	}
	if c.Batch <= 0 {
		c.Batch = DefaultBatch
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = DefaultBackoffMin
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(DefaultBackoffMax, c.BackoffMin)
	}
	if c.MaxSize <= 0 {
		c.MaxSize = DefaultMaxSize
	}
	if c.MaxFiles <= 0 {
		c.MaxFiles = DefaultMaxFiles
	}
	c.Token = fromEnv(c.Token, c.TokenEnv)
	c.Password = fromEnv(c.Password, c.PasswordEnv)
	c.APIKey = fromEnv(c.APIKey, c.APIKeyEnv)
	c.Secret = fromEnv(c.Secret, c.SecretEnv)
	switch c.Type {
	case TypeSyslog:
		if c.Network == "" {
			c.Network = "tcp"
		}
		if c.Network != "tcp" && c.Network != "tls" && c.Network != "udp" {
			return c, fmt.Errorf("syslog network %q: want tcp, tls or udp", c.Network)
		}
		if c.Format == "" {
			c.Format = "json"
		}
		if c.Format != "json" && c.Format != "cef" {
			return c, fmt.Errorf("syslog format %q: want json or cef", c.Format)
		}
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			return c, fmt.Errorf("syslog address %q: %w", c.Address, err)
		}
		if c.Framing == "" {
			c.Framing = "octet-counting"
		}
		if c.Framing != "octet-counting" && c.Framing != "newline" {
			return c, fmt.Errorf("syslog framing %q: want octet-counting or newline", c.Framing)
		}
		if c.Facility < 0 || c.Facility > 23 {
			return c, fmt.Errorf("syslog facility %d: want 0-23", c.Facility)
		}
		if c.Facility == 0 {
			c.Facility = 16
		}
		if c.AppName == "" {
			c.AppName = "vigil"
		}
		if c.Network == "udp" && c.Batch > 1 {
			c.Batch = 1 // one datagram per item; a failure retries only it
		}
	case TypeSplunk, TypeElastic, TypeOCSFHTTP, TypeWebhook:
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return c, fmt.Errorf("%s url %q: want http(s)://host[:port][/path]", c.Type, c.URL)
		}
		switch c.Type {
		case TypeSplunk:
			if c.Token == "" {
				return c, errors.New("splunk-hec needs a token (token or token_env)")
			}
			if c.Format == "" {
				c.Format = "vigil"
			}
			if c.Source == "" {
				c.Source = "vigil"
			}
		case TypeElastic:
			if c.IndexPrefix == "" {
				c.IndexPrefix = "vigil"
			}
			if strings.ContainsAny(c.IndexPrefix, `\/*?"<>| ,#:`) || c.IndexPrefix != strings.ToLower(c.IndexPrefix) {
				return c, fmt.Errorf("elasticsearch index_prefix %q: lower case, none of \\/*?\"<>| ,#:", c.IndexPrefix)
			}
		case TypeOCSFHTTP:
			if c.Format == "" {
				c.Format = "ndjson"
			}
			if c.Format != "ndjson" && c.Format != "array" {
				return c, fmt.Errorf("ocsf-http format %q: want ndjson or array", c.Format)
			}
		case TypeWebhook:
			if c.Secret == "" {
				return c, errors.New("webhook needs a secret (secret or secret_env)")
			}
			if c.Format == "" {
				c.Format = "vigil"
			}
		}
		if (c.Type == TypeSplunk || c.Type == TypeWebhook) && c.Format != "vigil" && c.Format != "ocsf" {
			return c, fmt.Errorf("%s format %q: want vigil or ocsf", c.Type, c.Format)
		}
	case TypeOCSFFile:
		if c.Path == "" {
			return c, errors.New("ocsf-file needs a path")
		}
	case "":
		return c, errors.New("sink type missing")
	default:
		return c, fmt.Errorf("unknown sink type %q (want syslog, splunk-hec, elasticsearch, ocsf-file, ocsf-http or webhook)", c.Type)
	}
	for _, k := range c.Kinds {
		if k != KindAlert && k != KindResponse && k != KindFinding && k != KindCompliance {
			return c, fmt.Errorf("kind %q: want alert, response, finding or compliance", k)
		}
	}
	if c.MinPriority != "" && priorityRank(c.MinPriority) < 0 {
		return c, fmt.Errorf("min_priority %q: want a Falco priority (emergency … debug)", c.MinPriority)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return c, errors.New("tls cert and key go together")
	}
	return c, nil
}

func fromEnv(v, env string) string {
	if v == "" && env != "" {
		return os.Getenv(env)
	}
	return v
}

func newSender(c SinkConfig) (sender, error) {
	switch c.Type {
	case TypeSyslog:
		return newSyslog(c)
	case TypeSplunk:
		return newSplunk(c)
	case TypeElastic:
		return newElastic(c)
	case TypeOCSFFile:
		return newOCSFFile(c)
	case TypeOCSFHTTP:
		return newOCSFHTTP(c)
	case TypeWebhook:
		return newWebhook(c)
	}
	return nil, fmt.Errorf("unknown sink type %q", c.Type)
}

// tlsConfig builds the client TLS configuration.
func (t TLSConfig) config(host string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.Insecure}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	if t.CA != "" {
		pem, err := os.ReadFile(t.CA)
		if err != nil {
			return nil, fmt.Errorf("reading CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate", t.CA)
		}
		tc.RootCAs = pool
	}
	if t.Cert != "" {
		crt, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			return nil, fmt.Errorf("loading client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{crt}
	}
	return tc, nil
}

// LoadConfig reads a YAML file: {sinks: [SinkConfig…]}, each sink with
// either its fields or a "spec" in ParseSink's syntax (fields given next to
// a spec override it).
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading export config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("export config %s: %w", path, err)
	}
	return c, nil
}

// ParseConfig parses LoadConfig's YAML.
func ParseConfig(b []byte) (Config, error) {
	var raw struct {
		Sinks []yaml.Node `yaml:"sinks"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&raw); err != nil {
		return Config{}, err
	}
	var c Config
	for i, n := range raw.Sinks {
		var spec struct {
			Spec string `yaml:"spec"`
		}
		// A sink given by spec: start from the spec, then overlay fields.
		_ = n.Decode(&spec)
		var sc SinkConfig
		if spec.Spec != "" {
			var err error
			if sc, err = ParseSink(spec.Spec); err != nil {
				return Config{}, fmt.Errorf("sink %d: %w", i, err)
			}
			removeKey(&n, "spec")
		}
		if err := decodeStrict(&n, &sc); err != nil {
			return Config{}, fmt.Errorf("sink %d: %w", i, err)
		}
		if _, err := sc.withDefaults(); err != nil {
			return Config{}, fmt.Errorf("sink %d (%s): %w", i, sc.Name, err)
		}
		c.Sinks = append(c.Sinks, sc)
	}
	return c, nil
}

func removeKey(n *yaml.Node, key string) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content = append(n.Content[:i], n.Content[i+2:]...)
			return
		}
	}
}

func decodeStrict(n *yaml.Node, v any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// ParseSink reads a sink from a URL-like flag value:
//
//	syslog+tcp://host:514?format=cef        (syslog:// is TCP)
//	syslog+tls://host:6514?format=cef&ca=/etc/ca.pem
//	syslog+udp://host:514
//	splunk-hec://host:8088?token_env=HEC_TOKEN&index=main   (HTTPS; splunk-hec+http:// for HTTP)
//	elasticsearch://user:pass@host:9200?index_prefix=vigil  (HTTPS; elasticsearch+http://, opensearch://)
//	ocsf-file:/var/log/vigil/ocsf.jsonl?max_size=104857600
//	ocsf+https://collector/path?format=array   (ocsf+http:// too)
//	webhook+https://host/hook?secret_env=HOOK_SECRET        (webhook+http:// too)
//
// Query parameters set the SinkConfig fields by their YAML names
// (name, format, token, index, ca, cert, key, insecure_skip_verify, buffer,
// batch, timeout, backoff_min, max_attempts, …); unknown ones are errors.
func ParseSink(spec string) (SinkConfig, error) {
	var c SinkConfig
	scheme, rest, ok := strings.Cut(spec, ":")
	if !ok || scheme == "" {
		return c, fmt.Errorf("export sink %q: want scheme:…, e.g. syslog+tls://host:6514", spec)
	}
	scheme = strings.ToLower(scheme)
	if scheme == "ocsf-file" {
		c.Type = TypeOCSFFile
		path, query, _ := strings.Cut(strings.TrimPrefix(rest, "//"), "?")
		if path == "" {
			return c, fmt.Errorf("export sink %q: ocsf-file needs a path", spec)
		}
		c.Path = path
		q, err := url.ParseQuery(query)
		if err != nil {
			return c, fmt.Errorf("export sink %q: %w", spec, err)
		}
		if err := applyQuery(&c, q); err != nil {
			return c, fmt.Errorf("export sink %q: %w", spec, err)
		}
		return c, nil
	}
	u, err := url.Parse(spec)
	if err != nil {
		return c, fmt.Errorf("export sink %q: %w", redact(spec), errors.Unwrap(err))
	}
	if u.Host == "" {
		return c, fmt.Errorf("export sink %q: no host", redact(spec))
	}
	q := u.Query()
	httpURL := func(def string) string {
		v := *u
		v.Scheme = def
		v.User = nil
		v.RawQuery = ""
		return v.String()
	}
	switch scheme {
	case "syslog", "syslog+tcp", "syslog+tls", "syslog+udp":
		c.Type = TypeSyslog
		c.Network = "tcp"
		if _, n, ok := strings.Cut(scheme, "+"); ok {
			c.Network = n
		}
		c.Address = u.Host
		if u.Port() == "" {
			port := "514"
			if c.Network == "tls" {
				port = "6514"
			}
			c.Address = net.JoinHostPort(u.Hostname(), port)
		}
	case "splunk-hec", "splunk-hec+https", "splunk-hec+http":
		c.Type = TypeSplunk
		c.URL = httpURL(httpScheme(scheme))
	case "elasticsearch", "elasticsearch+https", "elasticsearch+http", "opensearch", "opensearch+https", "opensearch+http":
		c.Type = TypeElastic
		c.URL = httpURL(httpScheme(scheme))
		if u.User != nil {
			c.Username = u.User.Username()
			c.Password, _ = u.User.Password()
		}
	case "ocsf+https", "ocsf+http", "ocsf-http", "ocsf-https":
		c.Type = TypeOCSFHTTP
		c.URL = httpURL(httpScheme(strings.Replace(scheme, "-", "+", 1)))
	case "webhook", "webhook+https", "webhook+http":
		c.Type = TypeWebhook
		c.URL = httpURL(httpScheme(scheme))
	default:
		return c, fmt.Errorf("export sink %q: unknown scheme %q (want syslog+tcp, syslog+tls, syslog+udp, splunk-hec, elasticsearch, opensearch, ocsf-file, ocsf+https or webhook+https)", redact(spec), scheme)
	}
	if err := applyQuery(&c, q); err != nil {
		return c, fmt.Errorf("export sink %q: %w", redact(spec), err)
	}
	return c, nil
}

func httpScheme(scheme string) string {
	if strings.HasSuffix(scheme, "+http") {
		return "http"
	}
	return "https"
}

// redact hides a URL's password and secret-bearing query values in errors.
func redact(spec string) string {
	u, err := url.Parse(spec)
	if err != nil {
		return "(unparsable sink spec)"
	}
	q := u.Query()
	for _, k := range []string{"token", "password", "api_key", "secret"} {
		if q.Has(k) {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

func applyQuery(c *SinkConfig, q url.Values) error {
	for k, vs := range q {
		v := vs[len(vs)-1]
		var err error
		switch k {
		case "name":
			c.Name = v
		case "format":
			c.Format = v
		case "facility":
			c.Facility, err = strconv.Atoi(v)
		case "framing":
			c.Framing = v
		case "app_name":
			c.AppName = v
		case "ca":
			c.TLS.CA = v
		case "cert":
			c.TLS.Cert = v
		case "key":
			c.TLS.Key = v
		case "insecure_skip_verify", "insecure":
			c.TLS.Insecure, err = strconv.ParseBool(v)
		case "server_name":
			c.TLS.ServerName = v
		case "token":
			c.Token = v
		case "token_env":
			c.TokenEnv = v
		case "index":
			c.Index = v
		case "source":
			c.Source = v
		case "sourcetype":
			c.Sourcetype = v
		case "username":
			c.Username = v
		case "password":
			c.Password = v
		case "password_env":
			c.PasswordEnv = v
		case "api_key":
			c.APIKey = v
		case "api_key_env":
			c.APIKeyEnv = v
		case "index_prefix":
			c.IndexPrefix = v
		case "data_stream":
			c.DataStream, err = strconv.ParseBool(v)
		case "secret":
			c.Secret = v
		case "secret_env":
			c.SecretEnv = v
		case "kinds":
			c.Kinds = strings.Split(v, ",")
		case "min_priority":
			c.MinPriority = v
		case "max_size":
			c.MaxSize, err = strconv.ParseInt(v, 10, 64)
		case "max_files":
			c.MaxFiles, err = strconv.Atoi(v)
		case "buffer":
			c.Buffer, err = strconv.Atoi(v)
		case "batch":
			c.Batch, err = strconv.Atoi(v)
		case "max_attempts":
			c.MaxAttempts, err = strconv.Atoi(v)
		case "timeout":
			c.Timeout, err = time.ParseDuration(v)
		case "backoff_min":
			c.BackoffMin, err = time.ParseDuration(v)
		case "backoff_max":
			c.BackoffMax, err = time.ParseDuration(v)
		default:
			return fmt.Errorf("unknown parameter %q", k)
		}
		if err != nil {
			return fmt.Errorf("parameter %s: %w", k, err)
		}
	}
	return nil
}

// Load builds a Config from command-line specs (ParseSink syntax, each
// checked) and, when configPath is not empty, the sinks of that YAML file,
// file sinks first.
func Load(specs []string, configPath string) (Config, error) {
	var c Config
	if configPath != "" {
		var err error
		if c, err = LoadConfig(configPath); err != nil {
			return Config{}, err
		}
	}
	for _, s := range specs {
		sc, err := ParseSink(s)
		if err != nil {
			return Config{}, err
		}
		if _, err := sc.withDefaults(); err != nil {
			return Config{}, fmt.Errorf("export sink %q: %w", redact(s), err)
		}
		c.Sinks = append(c.Sinks, sc)
	}
	return c, nil
}

var priorities = []string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"}

// priorityRank is a Falco priority's rank (0 emergency … 7 debug), -1 for
// an unknown name; "info" is informational.
func priorityRank(p string) int {
	p = strings.ToLower(p)
	if p == "info" {
		p = "informational"
	}
	for i, q := range priorities {
		if q == p {
			return i
		}
	}
	return -1
}
