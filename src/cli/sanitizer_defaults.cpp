// AddressSanitizer defaults for the programs the end-to-end tests start by the thousand
// (`ferry` in all its roles, and the demo app, which compiles this file too). Only in a
// sanitizer build (scripts/test.sh); a release build has none of this.
//
// Stack-use-after-return checking (on by default since clang 15) gives every new thread a
// "fake stack" of several megabytes, touched page by page: for a short-lived process or a
// server thread serving one connection, that was a quarter of its CPU time in CI, mostly in
// page faults, which are dear on the CI machine. The same code runs with the check on in the
// unit-test binaries, which do not link this file; ASAN_OPTIONS still overrides it here.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FERRY_ASAN_DEFAULTS 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FERRY_ASAN_DEFAULTS 1
#endif

#ifdef FERRY_ASAN_DEFAULTS
extern "C" const char* __asan_default_options();
extern "C" const char* __asan_default_options() { return "detect_stack_use_after_return=0"; }
#endif
