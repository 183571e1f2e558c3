package sysfs

// Restarts returns how many times a Store asked to be restarted.
func Restarts() int64 { return restarts.Load() }
