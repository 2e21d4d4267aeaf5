package vulndb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Export writes a copy of the database at dbPath to out, for hosts that
// cannot reach upstream: Import on such a file replaces the database there.
// The database is checked first (schema version, integrity); out is written
// to a temporary file beside it and renamed into place, so a failure leaves
// no partial file.
func Export(ctx context.Context, dbPath, out string) error {
	if err := validateDBFile(ctx, dbPath); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("export to %s: %w", out, err)
	}
	if same, err := sameFile(dbPath, abs); err == nil && same {
		return fmt.Errorf("export to %s: that is the database itself", out)
	}
	f, err := os.CreateTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".*.tmp")
	if err != nil {
		return fmt.Errorf("export to %s: %w", out, err)
	}
	tmp := f.Name()
	err = copyFile(ctx, f, dbPath)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = os.Rename(tmp, abs)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("export %s to %s: %w", dbPath, out, err)
	}
	syncDir(filepath.Dir(abs))
	return nil
}

func sameFile(a, b string) (bool, error) {
	fa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	fb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(fa, fb), nil
}
