#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sdkconfig.h"
#include "ota_request.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Exactly out_len * 2 hex digits. Not sscanf("%2x"): it also takes a sign, spaces and "0x". */
static bool parse_hex(const char *hex, uint8_t *out, size_t out_len)
{
    if (strlen(hex) != out_len * 2) {
        return false;
    }
    for (size_t i = 0; i < out_len; i++) {
        int high = hex_digit(hex[2 * i]);
        int low = hex_digit(hex[2 * i + 1]);
        if (high < 0 || low < 0) {
            return false;
        }
        out[i] = (uint8_t)(high << 4 | low);
    }
    return true;
}

/* Copies an optional string field; false when present but not a string or too long. */
static bool get_string(const cJSON *command, const char *name, char *out, size_t out_len)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(command, name);
    if (item == NULL) {
        return true;
    }
    if (!cJSON_IsString(item) || strlen(item->valuestring) >= out_len) {
        return false;
    }
    strcpy(out, item->valuestring);
    return true;
}

/* Reads an optional integer field within [lo, hi]; false when present and invalid. */
static bool get_int(const cJSON *command, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(command, name);
    if (item == NULL) {
        return true;
    }
    /* Range first: converting a double outside int64_t's range (1e300) is undefined behaviour. */
    if (!cJSON_IsNumber(item) || !(item->valuedouble >= (double)lo && item->valuedouble <= (double)hi) ||
        item->valuedouble != (double)(int64_t)item->valuedouble) {
        return false;
    }
    *out = (int64_t)item->valuedouble;
    return true;
}

static bool url_scheme_ok(const char *url)
{
    return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

bool ota_request_parse(const cJSON *command, ota_request_t *req, char *error, int error_len)
{
    memset(req, 0, sizeof(*req));
    req->size = -1;
    int64_t timeout = CONFIG_HIL_OTA_TIMEOUT_S, idle = CONFIG_HIL_OTA_IDLE_TIMEOUT_S, retries = CONFIG_HIL_OTA_RETRIES;
    char sha_hex[65] = "";
    const cJSON *force = cJSON_GetObjectItemCaseSensitive(command, "force");
    const char *bad = NULL;

    if (!get_string(command, "id", req->id, sizeof(req->id))) {
        bad = "id must be a string of at most 47 characters";
    } else if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(command, "url"))) {
        bad = "url is required and must be a string";
    } else if (!get_string(command, "url", req->url, sizeof(req->url))) {
        bad = "url is too long";
    } else if (!url_scheme_ok(req->url)) {
        bad = "url must start with http:// or https://";
    } else if (!get_string(command, "version", req->version, sizeof(req->version))) {
        bad = "version must be a string of at most 31 characters";
    } else if (!get_string(command, "sha256", sha_hex, sizeof(sha_hex)) ||
               (sha_hex[0] != '\0' && !parse_hex(sha_hex, req->sha256, sizeof(req->sha256)))) {
        bad = "sha256 must be 64 hex digits";
    } else if (!get_int(command, "size", 1, INT32_MAX, &req->size)) {
        bad = "size must be a positive integer";
    } else if (force != NULL && !cJSON_IsBool(force)) {
        bad = "force must be true or false";
    } else if (!get_int(command, "timeout_s", 1, 86400, &timeout) || !get_int(command, "idle_timeout_s", 1, 3600, &idle) ||
               !get_int(command, "retries", 0, 20, &retries)) {
        bad = "timeout_s, idle_timeout_s and retries must be integers in range";
    } else if (cJSON_GetObjectItemCaseSensitive(command, "mesh") != NULL &&
               (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(command, "mesh")) ||
                !ota_mesh_mode_parse(cJSON_GetObjectItemCaseSensitive(command, "mesh")->valuestring, &req->mesh))) {
        bad = "mesh must be \"sequential\", \"broadcast\" or \"p2p\"";
    }
    if (bad != NULL) {
        snprintf(error, (size_t)error_len, "%s", bad);
        return false;
    }
    req->has_sha256 = sha_hex[0] != '\0';
    req->force = cJSON_IsTrue(force);
    req->timeout_s = (int)timeout;
    req->idle_timeout_s = (int)idle;
    req->retries = (int)retries;
    return true;
}

bool ota_mesh_mode_parse(const char *text, ota_mesh_mode_t *mode)
{
    static const char *NAMES[] = {"sequential", "broadcast", "p2p"};
    for (int i = 0; i < 3; i++) {
        if (strcmp(text, NAMES[i]) == 0) {
            *mode = (ota_mesh_mode_t)(OTA_MESH_SEQUENTIAL + i);
            return true;
        }
    }
    return false;
}

const char *ota_mesh_mode_name(ota_mesh_mode_t mode)
{
    switch (mode) {
    case OTA_MESH_SEQUENTIAL: return "sequential";
    case OTA_MESH_BROADCAST: return "broadcast";
    case OTA_MESH_P2P: return "p2p";
    default: return "none";
    }
}

/* The image a push or a mesh distribution announces before its bytes: size and SHA-256, both required (the
   bytes come in pieces, so they are what the device checks the whole against). NULL when both are valid. */
static const char *parse_announced_image(const cJSON *command, ota_request_t *req)
{
    char sha_hex[65] = "";
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(command, "size")) ||
        !get_int(command, "size", 1, INT32_MAX, &req->size)) {
        return "size is required and must be a positive integer";
    }
    if (!get_string(command, "sha256", sha_hex, sizeof(sha_hex)) || !parse_hex(sha_hex, req->sha256, sizeof(req->sha256))) {
        return "sha256 is required and must be 64 hex digits";
    }
    req->has_sha256 = true;
    return NULL;
}

bool ota_request_parse_mesh_rx(const cJSON *command, ota_request_t *req, char *error, int error_len)
{
    memset(req, 0, sizeof(*req));
    req->mesh_rx = true;
    int64_t timeout = CONFIG_HIL_OTA_TIMEOUT_S, idle = CONFIG_HIL_OTA_IDLE_TIMEOUT_S, tag = 0;
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(command, "mesh");
    const char *bad = NULL;
    if (!get_string(command, "id", req->id, sizeof(req->id)) ||
        !get_string(command, "version", req->version, sizeof(req->version))) {
        bad = "id and version must be short strings";
    } else if ((bad = parse_announced_image(command, req)) != NULL) {
        /* bad says which */
    } else if (!cJSON_IsString(mode) || !ota_mesh_mode_parse(mode->valuestring, &req->mesh)) {
        bad = "mesh must be \"sequential\", \"broadcast\" or \"p2p\"";
    } else if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(command, "tag")) ||
               !get_int(command, "tag", 0, UINT32_MAX, &tag) ||
               !get_int(command, "timeout_s", 1, 86400, &timeout) || !get_int(command, "idle_timeout_s", 1, 3600, &idle)) {
        bad = "tag, timeout_s and idle_timeout_s must be integers in range";
    }
    if (bad != NULL) {
        snprintf(error, (size_t)error_len, "%s", bad);
        return false;
    }
    req->force = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(command, "force"));
    req->mesh_tag = (uint32_t)tag;
    req->timeout_s = (int)timeout;
    req->idle_timeout_s = (int)idle;
    return true;
}

bool ota_request_parse_push(const cJSON *command, ota_request_t *req, char *error, int error_len)
{
    memset(req, 0, sizeof(*req));
    req->push = true;
    req->size = -1;
    int64_t timeout = CONFIG_HIL_OTA_TIMEOUT_S, idle = CONFIG_HIL_OTA_IDLE_TIMEOUT_S, window = OTA_PUSH_WINDOW_DEFAULT;
    int64_t chunk = OTA_PUSH_CHUNK_DEFAULT;
    const cJSON *force = cJSON_GetObjectItemCaseSensitive(command, "force");
    const char *bad = NULL;

    if (!get_string(command, "id", req->id, sizeof(req->id))) {
        bad = "id must be a string of at most 47 characters";
    } else if (strpbrk(req->id, "/+#") != NULL) {
        bad = "id must not contain /, + or #: it names the topics of the push's chunks";
    } else if (!get_string(command, "version", req->version, sizeof(req->version))) {
        bad = "version must be a string of at most 31 characters";
    } else if ((bad = parse_announced_image(command, req)) != NULL) {
        /* bad says which */
    } else if (force != NULL && !cJSON_IsBool(force)) {
        bad = "force must be true or false";
    } else if (!get_int(command, "window", 1, OTA_PUSH_WINDOW_MAX, &window)) {
        bad = "window must be an integer from 1 to 16";
    } else if (!get_int(command, "chunk", OTA_PUSH_CHUNK_MIN, OTA_PUSH_CHUNK_MAX, &chunk)) {
        bad = "chunk must be an integer from 512 to 16384 (bytes)";
    } else if (window * chunk > OTA_PUSH_IN_FLIGHT_MAX) {
        bad = "window x chunk must be at most 65536 bytes (the device's chunk queue)";
    } else if (!get_int(command, "timeout_s", 1, 86400, &timeout) || !get_int(command, "idle_timeout_s", 1, 3600, &idle)) {
        bad = "timeout_s must be an integer from 1 to 86400 and idle_timeout_s one from 1 to 3600";
    }
    if (bad != NULL) {
        snprintf(error, (size_t)error_len, "%s", bad);
        return false;
    }
    req->force = cJSON_IsTrue(force);
    req->timeout_s = (int)timeout;
    req->idle_timeout_s = (int)idle;
    req->window = (int)window;
    req->chunk = (int)chunk;
    return true;
}

bool ota_json_depth_ok(const char *text, size_t len, int max_depth)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                i++; /* the escaped character cannot end the string */
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                return false;
            }
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return true;
}

int ota_version_compare(const char *a, const char *b)
{
    while (*a != '\0' || *b != '\0') {
        char *end_a;
        char *end_b;
        long na = strtol(a, &end_a, 10);
        long nb = strtol(b, &end_b, 10);
        if (end_a == a || end_b == b) {
            return strcmp(a, b);
        }
        if (na != nb) {
            return na < nb ? -1 : 1;
        }
        if ((*end_a == '.') != (*end_b == '.')) {
            return strcmp(end_a, end_b);
        }
        a = *end_a == '.' ? end_a + 1 : end_a;
        b = *end_b == '.' ? end_b + 1 : end_b;
    }
    return 0;
}
