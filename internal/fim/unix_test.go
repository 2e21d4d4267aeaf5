package fim

import (
	"crypto/hmac"
	"crypto/sha256"
	"syscall"
)

func nobody() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
}

func macOf(key, payload []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(dbMagic))
	m.Write(payload)
	return m.Sum(nil)
}
