package node

import (
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"webconf/conf"
)

// masterPassword is the master password the server uses, from
// [webconference] master_password:
//   - "off" (any case): none; getRoomPassword, listRooms and the REST
//     operator routes refuse everyone, as SEMS does with an empty one;
//   - any other value: that password; the file is neither read nor written;
//   - empty: the one kept in data_dir/master_password
//     (conf.MasterPasswordFile), made (random, 0600) and logged once when
//     the file does not exist yet.
//
// The log line of a new password is the only place a secret is ever
// logged: the operator of a first run has to learn it somewhere, and it is
// in the file as well.
func masterPassword(cfg *conf.Config, log *slog.Logger) (string, error) {
	pw := cfg.Webconference.MasterPassword
	switch {
	case conf.MasterPasswordOff(pw):
		log.Info("master password off: listRooms, getRoomPassword and the REST operator routes refuse everyone")
		return "", nil
	case pw != "":
		return pw, nil
	}
	file := filepath.Join(cfg.Server.DataDir, conf.MasterPasswordFile)
	pw, err := conf.ReadMasterPassword(file)
	if err == nil {
		log.Info("master password read from its file", "file", file)
		return pw, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	pw, created, err := createMasterPassword(file)
	if err != nil {
		return "", err
	}
	if created {
		log.Info(fmt.Sprintf("master password: %s (kept in %s)", pw, file))
	} else {
		log.Info("master password read from its file", "file", file)
	}
	return pw, nil
}

// newMasterPassword is 160 random bits in base32 (A-Z, 2-7): 32
// characters that survive copying, shells and URLs.
func newMasterPassword() (string, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("master password: %w", err)
	}
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]), nil
}

// createMasterPassword writes a new password to file, which must not
// exist: complete (written to a temporary file, synced, then linked into
// place) and 0600 from the start. When another process made the file
// first, its password is returned with created false.
func createMasterPassword(file string) (pw string, created bool, err error) {
	if pw, err = newMasterPassword(); err != nil {
		return "", false, err
	}
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, fmt.Errorf("master password file %s: %w", file, err)
	}
	tmp, err := os.CreateTemp(dir, "."+conf.MasterPasswordFile+".*") // 0600
	if err != nil {
		return "", false, fmt.Errorf("master password file %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(pw + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", false, fmt.Errorf("master password file %s: %w", file, err)
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			pw, err := conf.ReadMasterPassword(file)
			return pw, false, err
		}
		return "", false, fmt.Errorf("master password file %s: %w", file, err)
	}
	if d, err := os.Open(dir); err == nil { // the link survives a crash
		_ = d.Sync()
		d.Close()
	}
	return pw, true, nil
}
