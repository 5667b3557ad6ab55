//go:build !asan

package tornado

// underASan: the test binary was built with -asan (much slower).
const underASan = false
