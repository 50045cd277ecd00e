// Package pgtest gives tests a fresh PostgreSQL database. With
// ACMEGW_TEST_DSN set, it creates databases on that server; otherwise it
// starts a throwaway cluster, once per test binary, from the server
// binaries that `pg_config --bindir` names, listening only on 127.0.0.1.
//
// A test package that calls Start has a TestMain that calls Main, which
// stops the cluster when the tests end:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// When no server can be had, Start skips the test, or fails it when the
// environment has CI=true: in CI, a missing tool is a failure.
//
// StopServer and StartServer stop the throwaway cluster and start it again
// on the same data and port, for tests of what clients see while the
// database is away. Tests that use them must not run in parallel with
// other tests of the binary that use the cluster.
package pgtest

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cluster is the binary's throwaway server. Test helpers are the one place
// where package state is the point: one server for the whole binary.
var cluster struct {
	mu      sync.Mutex
	main    bool   // Main is running the tests
	started bool   // start ran
	dsn     string // of the postgres database; "" when start failed
	err     error
	stop    func()
	// pause stops the server, keeping its data; resume starts it again.
	pause, resume func() error
	down          bool // paused
}

// Main runs the tests, stops the cluster if one was started, and exits.
func Main(m *testing.M) {
	os.Exit(Run(m))
}

// Run runs the tests and then stops the cluster, if one was started, for
// a TestMain with work of its own to do afterwards.
func Run(m *testing.M) int {
	cluster.mu.Lock()
	cluster.main = true
	cluster.mu.Unlock()
	code := m.Run()
	cluster.mu.Lock()
	if cluster.stop != nil {
		cluster.stop()
	}
	cluster.mu.Unlock()
	return code
}

// Start returns the DSN of a new, empty database, dropped when t ends.
func Start(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("ACMEGW_TEST_DSN")
	if admin == "" {
		var err error
		if admin, err = local(); err != nil {
			unavailable(t, err)
		}
	}
	u, err := url.Parse(admin)
	if err != nil || u.Scheme == "" {
		t.Fatalf("pgtest: ACMEGW_TEST_DSN must be a postgres:// URL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		unavailable(t, fmt.Errorf("connect to the test server: %w", err))
	}
	defer conn.Close(ctx)
	name := "test_" + strings.ToLower(rand.Text())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// unavailable ends a test that cannot have a server.
func unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: no PostgreSQL server (CI=true, so this fails): %v", err)
	}
	t.Skipf("pgtest: no PostgreSQL server, skipping (set ACMEGW_TEST_DSN or install the server binaries): %v", err)
}

// local returns the DSN of the throwaway cluster, starting it on first use.
func local() (string, error) {
	cluster.mu.Lock()
	defer cluster.mu.Unlock()
	if !cluster.main {
		return "", fmt.Errorf("pgtest.Main is not running the tests, so a cluster would outlive them: add func TestMain(m *testing.M) { pgtest.Main(m) }")
	}
	if !cluster.started {
		cluster.started = true
		cluster.dsn, cluster.stop, cluster.err = start()
	}
	return cluster.dsn, cluster.err
}

// start initializes and starts a cluster in a new temporary directory and
// returns its DSN and the function that stops and removes it.
func start() (dsn string, stop func(), err error) {
	out, err := exec.Command("pg_config", "--bindir").Output()
	if err != nil {
		return "", nil, fmt.Errorf("pg_config --bindir: %w", err)
	}
	bin := strings.TrimSpace(string(out))
	for _, tool := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(bin, tool)); err != nil {
			return "", nil, fmt.Errorf("server binaries: %w", err)
		}
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return "", nil, err
	}
	run, err := runner(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	data, logFile := filepath.Join(dir, "data"), filepath.Join(dir, "log")
	if out, err := run(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -c unix_socket_directories=%s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", port, dir)
	stop = func() {
		run(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
	pgStart := func() error {
		if out, err := run(filepath.Join(bin, "pg_ctl"), "-D", data, "-o", opts, "-l", logFile, "-w", "-t", "60", "start"); err != nil {
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
		}
		return nil
	}
	if err := pgStart(); err != nil {
		stop()
		return "", nil, err
	}
	cluster.resume = pgStart
	cluster.pause = func() error {
		// fast: disconnect the clients, as an operator's restart does.
		if out, err := run(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
			return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
		}
		return nil
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), stop, nil
}

// StopServer stops the throwaway cluster that Start's databases live on,
// keeping its data, until StartServer or the end of t. It skips t when
// the databases are on a server of ACMEGW_TEST_DSN, which is not ours to
// stop, and fails it when no cluster runs.
func StopServer(t testing.TB) {
	t.Helper()
	if os.Getenv("ACMEGW_TEST_DSN") != "" {
		t.Skip("pgtest: the server of ACMEGW_TEST_DSN is not ours to stop")
	}
	cluster.mu.Lock()
	defer cluster.mu.Unlock()
	if cluster.pause == nil || cluster.dsn == "" {
		t.Fatal("pgtest: StopServer before Start started a cluster")
	}
	if cluster.down {
		t.Fatal("pgtest: StopServer: the server is stopped already")
	}
	if err := cluster.pause(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	cluster.down = true
	// Whatever happens to t, the tests after it get their server back.
	t.Cleanup(func() {
		cluster.mu.Lock()
		defer cluster.mu.Unlock()
		if cluster.down {
			if err := cluster.resume(); err != nil {
				t.Errorf("pgtest: %v", err)
				return
			}
			cluster.down = false
		}
	})
}

// StartServer starts the cluster that StopServer stopped, on the same port,
// and returns when it accepts connections.
func StartServer(t testing.TB) {
	t.Helper()
	cluster.mu.Lock()
	defer cluster.mu.Unlock()
	if !cluster.down {
		t.Fatal("pgtest: StartServer: the server is not stopped")
	}
	if err := cluster.resume(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	cluster.down = false
}

// runner returns how to run the server's tools: as the postgres user when
// we are root (initdb refuses root), owning dir.
func runner(dir string) (func(name string, args ...string) ([]byte, error), error) {
	direct := func(name string, args ...string) ([]byte, error) {
		return exec.Command(name, args...).CombinedOutput()
	}
	if os.Geteuid() != 0 {
		return direct, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and initdb refuses root: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	if runuser, err := exec.LookPath("runuser"); err == nil {
		return func(name string, args ...string) ([]byte, error) {
			return exec.Command(runuser, append([]string{"-u", "postgres", "--", name}, args...)...).CombinedOutput()
		}, nil
	}
	return func(name string, args ...string) ([]byte, error) {
		quoted := make([]string, 0, len(args)+1)
		for _, a := range append([]string{name}, args...) {
			quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
		}
		return exec.Command("su", "postgres", "-s", "/bin/sh", "-c", strings.Join(quoted, " ")).CombinedOutput()
	}, nil
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
