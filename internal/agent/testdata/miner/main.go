// Command miner is the workload of the agent's detection scenarios
// (internal/agent/scenario_test.go). The tests build it statically and
// bind-mount it into containers of a minimal image:
//
//	miner pool ADDR            a Stratum pool: answers mining.subscribe,
//	                           mining.authorize and mining.submit, sends jobs
//	miner mine ADDR FILE       a miner: connects to the pool, logs in with
//	                           Stratum JSON lines, then hashes (SHA-256 over a
//	                           nonce) in a busy loop, writing its hash counter
//	                           to FILE (20 digits at offset 0) as it goes
//	miner web ADDR             an HTTP server answering 200 "ok"
//	miner db FILE N            an SQLite database doing work: N rows inserted,
//	                           then queried (modernc.org/sqlite, no cgo)
//
// It is a simulation: the hashing mines nothing and the pool checks
// nothing. Each subcommand exits non-zero with the reason when it fails.
package main

import (
	"bufio"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	_ "modernc.org/sqlite"
)

func main() {
	if len(os.Args) < 3 {
		fail(errors.New("usage: miner pool ADDR | mine ADDR FILE | web ADDR | db FILE N"))
	}
	var err error
	switch os.Args[1] {
	case "pool":
		err = pool(os.Args[2])
	case "mine":
		if len(os.Args) != 4 {
			fail(errors.New("usage: miner mine ADDR FILE"))
		}
		err = mine(os.Args[2], os.Args[3])
	case "web":
		err = web(os.Args[2])
	case "db":
		if len(os.Args) != 4 {
			fail(errors.New("usage: miner db FILE N"))
		}
		n, perr := strconv.Atoi(os.Args[3])
		if perr != nil {
			fail(fmt.Errorf("row count %q: %w", os.Args[3], perr))
		}
		err = db(os.Args[2], n)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "miner:", err)
	os.Exit(1)
}

// request and response are Stratum (v1) JSON-RPC lines.
type request struct {
	ID     int    `json:"id"`
	Method string `json:"method"`
	Params []any  `json:"params"`
}

type response struct {
	ID     int    `json:"id"`
	Result any    `json:"result"`
	Error  any    `json:"error"`
	Method string `json:"method,omitempty"`
	Params []any  `json:"params,omitempty"`
}

// pool serves Stratum logins on addr until killed.
func pool(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("pool: listening on", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go servePool(c)
	}
}

func servePool(c net.Conn) {
	defer c.Close()
	enc := json.NewEncoder(c)
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		var req request
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			enc.Encode(response{ID: 0, Error: []any{20, "bad request: " + err.Error(), nil}})
			return
		}
		switch req.Method {
		case "mining.subscribe":
			enc.Encode(response{ID: req.ID, Result: []any{[]any{[]any{"mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"}}, "08000002", 4}})
		case "mining.authorize":
			enc.Encode(response{ID: req.ID, Result: true})
			enc.Encode(response{Method: "mining.notify", Params: []any{"job1", "00000000", "01000000", "ffffffff", []any{}, "20000000", "1d00ffff", "5f5e1000", true}})
			fmt.Println("pool: authorized", req.Params)
		case "mining.submit":
			enc.Encode(response{ID: req.ID, Result: true})
		default:
			enc.Encode(response{ID: req.ID, Error: []any{20, "unknown method " + req.Method, nil}})
		}
	}
}

// mine logs in to the pool at addr and hashes until killed, writing the
// number of hashes done to file.
func mine(addr, file string) error {
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	var c net.Conn
	// The pool starts beside the miner: retry until it listens.
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err = net.Dial("tcp", addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("connecting to the pool %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer c.Close()
	enc := json.NewEncoder(c)
	rd := bufio.NewScanner(c)
	call := func(id int, method string, params ...any) (response, error) {
		if err := enc.Encode(request{ID: id, Method: method, Params: params}); err != nil {
			return response{}, err
		}
		for rd.Scan() {
			var r response
			if err := json.Unmarshal(rd.Bytes(), &r); err != nil {
				return response{}, fmt.Errorf("%s: bad reply %q: %w", method, rd.Text(), err)
			}
			if r.Method == "" && r.ID == id {
				return r, nil
			}
		}
		return response{}, fmt.Errorf("%s: pool closed the connection: %v", method, rd.Err())
	}
	if _, err := call(1, "mining.subscribe", "vigil-sim/1.0"); err != nil {
		return err
	}
	r, err := call(2, "mining.authorize", "worker1", "x")
	if err != nil {
		return err
	}
	if r.Result != true {
		return fmt.Errorf("mining.authorize refused: %v", r.Error)
	}
	fmt.Println("miner: logged in to", addr)
	go func() { // drain jobs and share replies
		for rd.Scan() {
		}
	}()

	var block [80]byte
	var count [21]byte
	count[20] = '\n'
	for n, id := uint64(0), 3; ; n++ {
		binary.LittleEndian.PutUint64(block[72:], n)
		sum := sha256.Sum256(block[:])
		sum = sha256.Sum256(sum[:])
		if n%(1<<15) != 0 {
			continue
		}
		copy(count[:20], fmt.Sprintf("%020d", n))
		if _, err := f.WriteAt(count[:], 0); err != nil {
			return err
		}
		if n%(1<<21) == 0 && n > 0 {
			if err := enc.Encode(request{ID: id, Method: "mining.submit", Params: []any{"worker1", "job1", "00000000", "5f5e1000", fmt.Sprintf("%08x", uint32(n))}}); err != nil {
				return fmt.Errorf("mining.submit: %w", err)
			}
			id++
		}
	}
}

// web answers every request with 200 "ok".
func web(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Println("web: listening on", ln.Addr())
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})}
	return srv.Serve(ln)
}

// db inserts n rows into an SQLite database at file and queries them.
func db(file string, n int) error {
	d, err := sql.Open("sqlite", file)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Exec(`CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount INTEGER NOT NULL);
		CREATE INDEX orders_customer ON orders (customer)`); err != nil {
		return fmt.Errorf("creating the schema: %w", err)
	}
	tx, err := d.Begin()
	if err != nil {
		return err
	}
	ins, err := tx.Prepare(`INSERT INTO orders (customer, amount) VALUES (?, ?)`)
	if err != nil {
		return err
	}
	for i := range n {
		if _, err := ins.Exec(fmt.Sprintf("customer-%d", i%97), i%1000); err != nil {
			return fmt.Errorf("inserting row %d: %w", i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	var rows, sum int
	if err := d.QueryRow(`SELECT count(*), sum(amount) FROM orders`).Scan(&rows, &sum); err != nil {
		return fmt.Errorf("querying: %w", err)
	}
	var one int
	if err := d.QueryRow(`SELECT count(*) FROM orders WHERE customer = 'customer-5'`).Scan(&one); err != nil {
		return fmt.Errorf("querying by index: %w", err)
	}
	if rows != n {
		return fmt.Errorf("%d rows inserted, %d counted", n, rows)
	}
	fmt.Printf("db: %d rows, sum %d, customer-5 has %d\n", rows, sum, one)
	return nil
}
