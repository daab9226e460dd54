/*
 * libcurl, loaded when the app first needs it: the libcurl functions the host port's HTTP client calls
 * (esp_http_client.c, http_transport.c, http_errors.c), defined here over libcurl.so.4 opened with dlopen()
 * at the first call. No ESP-IDF counterpart.
 *
 * Why: the firmware is a new process at every boot, and linking libcurl loads it and the 27 libraries it
 * needs (GnuTLS, Kerberos, LDAP, libssh2, ...) before app_main: their relocations and constructors took
 * about 5 ms of CPU of the 7 ms a boot costs, in every boot, though most boots of a test run never open an
 * HTTP connection (docs/performance.md). Now only a boot that does pays for it, at its first HTTP client.
 * The executable is linked without -lcurl; libcurl's own calls to connect(), send(), poll() and the like
 * still find the network gate's (src/host_net_gate.c), which the executable exports.
 *
 * A missing or unusable libcurl.so.4 ends the app with a panic that says what is missing (it cannot happen
 * where the app was built: libcurl4-openssl-dev depends on it).
 */
#define CURL_DISABLE_TYPECHECK /* the definitions below are the functions themselves, not checked calls */
#include <curl/curl.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "esp_log.h"
#include "host_board.h"

static const char *TAG = "host_curl";

#define LIBCURL "libcurl.so.4"

/* Every libcurl function the port calls. A call to one not listed here fails to link. */
#define HOST_CURL_FUNCTIONS(X)                                                                             \
    X(curl_global_init) X(curl_easy_init) X(curl_easy_setopt) X(curl_easy_getinfo) X(curl_easy_pause)      \
    X(curl_easy_reset) X(curl_easy_cleanup) X(curl_easy_strerror) X(curl_multi_init) X(curl_multi_cleanup) \
    X(curl_multi_add_handle) X(curl_multi_remove_handle) X(curl_multi_perform) X(curl_multi_poll)          \
    X(curl_multi_info_read) X(curl_slist_append) X(curl_slist_free_all) X(curl_url) X(curl_url_cleanup)    \
    X(curl_url_get) X(curl_url_set) X(curl_free)

#define POINTER(name) __typeof__(name) *name;
static struct {
    HOST_CURL_FUNCTIONS(POINTER)
} s_curl;
#undef POINTER
static pthread_once_t s_load_once = PTHREAD_ONCE_INIT;

static void fail(const char *what)
{
    ESP_LOGE(TAG, "cannot use %s: %s (install the libcurl 4 package the host build was made with)", LIBCURL, what);
    fflush(stdout);
    _exit(HOST_EXIT_PANIC);
}

static void load(void)
{
    void *lib = dlopen(LIBCURL, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fail(dlerror());
    }
#define RESOLVE(name)                                                   \
    if ((s_curl.name = (__typeof__(name) *)dlsym(lib, #name)) == NULL) { \
        fail(dlerror());                                                \
    }
    HOST_CURL_FUNCTIONS(RESOLVE)
#undef RESOLVE
}

/* The loaded functions; loads libcurl at the first call. */
#define CURL_API (pthread_once(&s_load_once, load), &s_curl)

/* The names are in parentheses so that curl.h's function-like macros of curl_easy_setopt and
   curl_easy_getinfo (which pass the call through) do not apply to the definitions. */

CURLcode(curl_global_init)(long flags)
{
    return CURL_API->curl_global_init(flags);
}

CURL *(curl_easy_init)(void)
{
    return CURL_API->curl_easy_init();
}

/* The one argument after `option` has the type the option's number range says (curl.h, CURLOPTTYPE_*):
   a long, a pointer (object, string, list or callback), a curl_off_t, or a struct curl_blob pointer. */
CURLcode(curl_easy_setopt)(CURL *curl, CURLoption option, ...)
{
    va_list args;
    va_start(args, option);
    CURLcode result;
    if (option < CURLOPTTYPE_OBJECTPOINT) {
        result = CURL_API->curl_easy_setopt(curl, option, va_arg(args, long));
    } else if (option >= CURLOPTTYPE_OFF_T && option < CURLOPTTYPE_BLOB) {
        result = CURL_API->curl_easy_setopt(curl, option, va_arg(args, curl_off_t));
    } else {
        result = CURL_API->curl_easy_setopt(curl, option, va_arg(args, void *));
    }
    va_end(args);
    return result;
}

/* Every CURLINFO takes one pointer, to where the value goes. */
CURLcode(curl_easy_getinfo)(CURL *curl, CURLINFO info, ...)
{
    va_list args;
    va_start(args, info);
    CURLcode result = CURL_API->curl_easy_getinfo(curl, info, va_arg(args, void *));
    va_end(args);
    return result;
}

CURLcode(curl_easy_pause)(CURL *handle, int bitmask)
{
    return CURL_API->curl_easy_pause(handle, bitmask);
}

void(curl_easy_reset)(CURL *curl)
{
    CURL_API->curl_easy_reset(curl);
}

void(curl_easy_cleanup)(CURL *curl)
{
    CURL_API->curl_easy_cleanup(curl);
}

const char *(curl_easy_strerror)(CURLcode code)
{
    return CURL_API->curl_easy_strerror(code);
}

CURLM *(curl_multi_init)(void)
{
    return CURL_API->curl_multi_init();
}

CURLMcode(curl_multi_cleanup)(CURLM *multi)
{
    return CURL_API->curl_multi_cleanup(multi);
}

CURLMcode(curl_multi_add_handle)(CURLM *multi, CURL *curl)
{
    return CURL_API->curl_multi_add_handle(multi, curl);
}

CURLMcode(curl_multi_remove_handle)(CURLM *multi, CURL *curl)
{
    return CURL_API->curl_multi_remove_handle(multi, curl);
}

CURLMcode(curl_multi_perform)(CURLM *multi, int *running_handles)
{
    return CURL_API->curl_multi_perform(multi, running_handles);
}

CURLMcode(curl_multi_poll)(CURLM *multi, struct curl_waitfd extra_fds[], unsigned int extra_nfds, int timeout_ms,
                           int *numfds)
{
    return CURL_API->curl_multi_poll(multi, extra_fds, extra_nfds, timeout_ms, numfds);
}

CURLMsg *(curl_multi_info_read)(CURLM *multi, int *msgs_in_queue)
{
    return CURL_API->curl_multi_info_read(multi, msgs_in_queue);
}

struct curl_slist *(curl_slist_append)(struct curl_slist *list, const char *data)
{
    return CURL_API->curl_slist_append(list, data);
}

void(curl_slist_free_all)(struct curl_slist *list)
{
    CURL_API->curl_slist_free_all(list);
}

CURLU *(curl_url)(void)
{
    return CURL_API->curl_url();
}

void(curl_url_cleanup)(CURLU *handle)
{
    CURL_API->curl_url_cleanup(handle);
}

/* Newer curl.h declares the handle const; the build checks which (HOST_CURL_URL_GET_CONST, CMakeLists.txt). */
#if HOST_CURL_URL_GET_CONST
#define URL_GET_HANDLE const CURLU
#else
#define URL_GET_HANDLE CURLU
#endif
CURLUcode(curl_url_get)(URL_GET_HANDLE *handle, CURLUPart what, char **part, unsigned int flags)
{
    return CURL_API->curl_url_get(handle, what, part, flags);
}

CURLUcode(curl_url_set)(CURLU *handle, CURLUPart what, const char *part, unsigned int flags)
{
    return CURL_API->curl_url_set(handle, what, part, flags);
}

void(curl_free)(void *p)
{
    CURL_API->curl_free(p);
}
