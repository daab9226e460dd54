/* An OTA request, parsed and validated from a command's JSON. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cJSON.h"

#define OTA_URL_MAX 256
/* Commands and manifests are flat objects. cJSON recurses once per level up to 1000 levels,
   far more than an 8 KB task stack holds, so deeper text is refused before it is parsed. */
#define OTA_JSON_MAX_DEPTH 8

/* How a mesh root distributes an image (docs/protocol.md, "Mesh"): not at all (each node downloads the URL
   itself, or the root alone updates), to each node in turn, broadcast chunks with NAKs, peer to peer. */
typedef enum { OTA_MESH_NONE, OTA_MESH_SEQUENTIAL, OTA_MESH_BROADCAST, OTA_MESH_P2P } ota_mesh_mode_t;

typedef struct {
    char id[48];
    char url[OTA_URL_MAX];
    char version[32];      /* expected version, "" when not given */
    uint8_t sha256[32];
    bool has_sha256;
    int64_t size;          /* expected image size, -1 when not given */
    bool force;            /* install even when not newer */
    int timeout_s;         /* overall deadline */
    int idle_timeout_s;    /* no-data deadline */
    int retries;           /* after a network error or 5xx */
    bool app_checked;      /* on_check_start and on_suspend_tasks already said yes (a manifest check) */
    bool push;             /* a `push` command: the image comes through the broker (ota_push.c), url is "" */
    int window;            /* push: chunks the pusher may have in flight beyond the acknowledged offset */
    int chunk;             /* push: bytes in every chunk but the last */
    ota_mesh_mode_t mesh;  /* the root: after its own update, distribute the image through the mesh this way */
    bool mesh_rx;          /* a node: the image comes through the mesh (mesh_dist.c), url is "" */
    uint32_t mesh_tag;     /* mesh_rx: the distribution's tag in its chunks */
} ota_request_t;

/* push: the window when the command gives none, and the largest one (the chunk queue's size). */
#define OTA_PUSH_WINDOW_DEFAULT 8
#define OTA_PUSH_WINDOW_MAX 16
/* push: the chunk size when the command gives none, and its range. Larger chunks cost fewer messages
   per byte (throughput); the device holds up to window + 2 of them in RAM, so window x chunk is bounded
   by OTA_PUSH_IN_FLIGHT_MAX. */
#define OTA_PUSH_CHUNK_DEFAULT 4096
#define OTA_PUSH_CHUNK_MIN 512
#define OTA_PUSH_CHUNK_MAX 16384
#define OTA_PUSH_IN_FLIGHT_MAX 65536

/* Fills req from an "ota"/"ota_trigger" command. On a bad field returns false and writes a
   short explanation to error. */
bool ota_request_parse(const cJSON *command, ota_request_t *req, char *error, int error_len);

/* Fills req from a "push" command (size and sha256 required, window 1..OTA_PUSH_WINDOW_MAX,
   chunk OTA_PUSH_CHUNK_MIN..OTA_PUSH_CHUNK_MAX, window x chunk at most OTA_PUSH_IN_FLIGHT_MAX). On a bad
   field returns false and writes a short explanation to error. */
/* A node's `mesh_ota` (from the root, over the mesh): id, version, size, sha256, mesh, tag, deadlines. */
bool ota_request_parse_mesh_rx(const cJSON *command, ota_request_t *req, char *error, int error_len);
/* "sequential", "broadcast", "p2p" -> the mode; false for anything else. */
bool ota_mesh_mode_parse(const char *text, ota_mesh_mode_t *mode);
const char *ota_mesh_mode_name(ota_mesh_mode_t mode);
bool ota_request_parse_push(const cJSON *command, ota_request_t *req, char *error, int error_len);

/* True when text (len bytes, JSON or not) opens at most max_depth arrays/objects at once. */
bool ota_json_depth_ok(const char *text, size_t len, int max_depth);

/* Compares dotted numeric versions ("1.10.0" > "1.9.2"); non-numeric parts compare as text.
   Negative, zero or positive like strcmp. */
int ota_version_compare(const char *a, const char *b);
