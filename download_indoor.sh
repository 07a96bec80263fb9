#!/usr/bin/env bash
# Download MIT Indoor67 (indoorCVPR_09.tar) into ${DATA_DIR:-data}/raw/indoor/<category>/<image>.
# Resumable, retried, verified, atomic and idempotent. Run with --help for details.
set -euo pipefail

OFFICIAL_URL="http://groups.csail.mit.edu/vision/LabelMe/NewImages/indoorCVPR_09.tar"
OFFICIAL_IMAGES=15620
TAR_NAME="indoorCVPR_09.tar"
PROG=$(basename "$0")

usage() {
    cat <<EOF
Usage: ./$PROG [--help]

Downloads MIT Indoor67 (MIT Indoor Scene Recognition, CVPR 2009: 67 categories,
15,620 images) as $TAR_NAME from
  $OFFICIAL_URL
(linked from http://web.mit.edu/torralba/www/indoor.html), checks it with
'tar -tf', and extracts it to

  \${DATA_DIR:-data}/raw/indoor/<category>/<image>.jpg

which is where 'python run.py source=indoor' looks, with no flags needed.

- Resumable: the download goes to \${DATA_DIR}/downloads/$TAR_NAME.part and is
  continued (HTTP Range) after a dropped connection, by each retry and by the
  next run after an interruption; it is renamed to .tar when complete.
- Atomic: extraction happens in a temporary folder next to the destination,
  which is moved into place only when complete; a marker file
  raw/indoor/.complete is part of that move.
- Idempotent: when the data is already there it says so and exits 0. To
  download again, delete \${DATA_DIR}/raw/indoor.
- A broken archive is deleted (so the next run fetches it afresh) and the run
  fails. The number of images is reported; for the official address it is
  compared with $OFFICIAL_IMAGES.
- Needs bash, tar and curl (preferred) or wget. Failures end with one line
  'error: <reason>' on stderr and a non-zero exit status.

Environment variables:
  DATA_DIR              data root (default: data, relative to the current
                        directory); the dataset goes to \$DATA_DIR/raw/indoor
  INDOOR_URL            address of the tar, for mirrors or tests
                        (default: the official address above)
  INDOOR_RETRIES        download attempts before giving up (default: 5)
  INDOOR_RETRY_DELAY    seconds before the first retry, doubled each time up
                        to 60 (default: 5)
  INDOOR_EXPECTED_IMAGES  image count to check against (default: $OFFICIAL_IMAGES
                        for the official address, no check otherwise)
  INDOOR_KEEP_TAR       1 keeps \$DATA_DIR/downloads/$TAR_NAME after
                        extraction (default: 0, deleted; it is about 2.4 GB)
  INDOOR_DOWNLOADER     curl or wget (default: curl if installed, else wget)
EOF
}

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

for arg in "$@"; do
    case "$arg" in
        -h | --help)
            usage
            exit 0
            ;;
        *)
            printf 'error: unknown argument %s (see ./%s --help)\n' "$arg" "$PROG" >&2
            exit 2
            ;;
    esac
done

DATA_DIR=${DATA_DIR:-data}
URL=${INDOOR_URL:-$OFFICIAL_URL}
RETRIES=${INDOOR_RETRIES:-5}
RETRY_DELAY=${INDOOR_RETRY_DELAY:-5}
KEEP_TAR=${INDOOR_KEEP_TAR:-0}
if [ -n "${INDOOR_EXPECTED_IMAGES:-}" ]; then
    EXPECTED=$INDOOR_EXPECTED_IMAGES
elif [ "$URL" = "$OFFICIAL_URL" ]; then
    EXPECTED=$OFFICIAL_IMAGES
else
    EXPECTED=""
fi

[[ $RETRIES =~ ^[1-9][0-9]*$ ]] || die "INDOOR_RETRIES must be a positive integer, not '$RETRIES'"
[[ $RETRY_DELAY =~ ^[0-9]+$ ]] || die "INDOOR_RETRY_DELAY must be a whole number of seconds, not '$RETRY_DELAY'"
[[ -z $EXPECTED || $EXPECTED =~ ^[0-9]+$ ]] || die "INDOOR_EXPECTED_IMAGES must be a number, not '$EXPECTED'"

RAW_DIR="$DATA_DIR/raw"
ROOT="$RAW_DIR/indoor"
MARKER="$ROOT/.complete"
DOWNLOADS="$DATA_DIR/downloads"
TAR="$DOWNLOADS/$TAR_NAME"
PART="$TAR.part"
PART_URL="$PART.url"   # the address the partial file comes from: a partial file from another one is discarded
TMP_PREFIX=".indoor-tmp."
WORK=""                # the temporary extraction folder, removed on any exit

cleanup() {
    if [ -n "$WORK" ] && [ -e "$WORK" ]; then
        rm -rf -- "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

marker_value() { # marker_value KEY: the value of KEY=... in the marker file, empty when absent
    sed -n "s/^$1=//p" "$MARKER" 2>/dev/null | head -n 1
}

file_size() { wc -c <"$1" | tr -d ' '; }

already_there() {
    [ -f "$MARKER" ] || return 1
    say "MIT Indoor67 is already there: $ROOT ($(marker_value images) images in $(marker_value categories) categories); nothing to do"
    say "(delete $ROOT to download it again)"
    exit 0
}

# ---------------------------------------------------------------------------------------------------------------
# 1. Already there?
say "MIT Indoor67 -> $ROOT"
already_there || true
if [ -e "$ROOT" ]; then
    die "$ROOT exists but was not completed by this script (no $MARKER); move it away or delete it, then run again"
fi
command -v tar >/dev/null 2>&1 || die "tar is not installed"

# ---------------------------------------------------------------------------------------------------------------
# 2. One run at a time (where flock exists), then clear what an interrupted run may have left.
mkdir -p -- "$DOWNLOADS" "$RAW_DIR" || die "cannot create $DOWNLOADS and $RAW_DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$DOWNLOADS/.indoor.lock"
    flock -n 9 || die "another $PROG is running for $DATA_DIR (lock: $DOWNLOADS/.indoor.lock)"
fi
already_there || true # finished by a run that held the lock while we waited
for stale in "$RAW_DIR/$TMP_PREFIX"*; do
    if [ -e "$stale" ]; then
        say "removing the unfinished extraction $stale left by an interrupted run"
        rm -rf -- "$stale"
    fi
done

# ---------------------------------------------------------------------------------------------------------------
# 3. Download (resumable, retried).
DOWNLOADER=${INDOOR_DOWNLOADER:-}
pick_downloader() {
    case "$DOWNLOADER" in
        curl | wget)
            command -v "$DOWNLOADER" >/dev/null 2>&1 || die "INDOOR_DOWNLOADER=$DOWNLOADER but $DOWNLOADER is not installed"
            ;;
        "")
            if command -v curl >/dev/null 2>&1; then
                DOWNLOADER=curl
            elif command -v wget >/dev/null 2>&1; then
                DOWNLOADER=wget
            else
                die "neither curl nor wget is installed; install one of them (e.g. apt-get install curl) and run again"
            fi
            ;;
        *) die "INDOOR_DOWNLOADER must be curl or wget, not '$DOWNLOADER'" ;;
    esac
}

FAIL_REASON=""
FAIL_FATAL=0 # 1: retrying cannot help (404, malformed address, disk full)

retryable_status() { # HTTP statuses worth retrying: timeouts, rate limits, server errors
    case "$1" in
        408 | 429 | 5??) return 0 ;;
        *) return 1 ;;
    esac
}

# One attempt; 0 when the body arrived complete. Otherwise sets FAIL_REASON and FAIL_FATAL.
fetch_curl() {
    local code rc=0 log="$DOWNLOADS/.indoor.curl.log"
    local args=(--fail --location --continue-at - --output "$PART" --write-out '%{http_code}'
        --connect-timeout 30 --speed-limit 1024 --speed-time 60)
    : >"$log"
    if [ -t 2 ]; then # a progress bar on the terminal; curl prints its own errors there too
        code=$(curl "${args[@]}" --progress-bar "$URL") || rc=$?
    else # quiet: curl's error message goes to the log, for the one-line reason
        code=$(curl "${args[@]}" --silent --show-error "$URL" 2>"$log") || rc=$?
    fi
    if [ "$rc" -eq 22 ] && [ "$code" = 416 ] && [ -s "$PART" ]; then
        # Range not satisfiable: the partial file already holds the whole file (the run that fetched it was
        # stopped before renaming it). 'tar -tf' below judges the result.
        say "the server reports that $PART is already complete"
        rc=0
    fi
    if [ "$rc" -eq 0 ]; then
        rm -f -- "$log"
        return 0
    fi
    local detail
    detail=$(grep -v '^[[:space:]]*$' "$log" 2>/dev/null | tail -n 1 || true)
    rm -f -- "$log"
    case "$rc" in
        22)
            FAIL_REASON="HTTP $code from $URL"
            retryable_status "$code" || FAIL_FATAL=1
            ;;
        1 | 3) FAIL_REASON="curl cannot use the address $URL (${detail:-exit $rc})" FAIL_FATAL=1 ;;
        6) FAIL_REASON="cannot resolve the host of $URL" ;;
        7) FAIL_REASON="cannot connect to the server of $URL" ;;
        18) FAIL_REASON="the connection closed before the end of the file" ;;
        23) FAIL_REASON="cannot write $PART (disk full?)" FAIL_FATAL=1 ;;
        28) FAIL_REASON="the transfer timed out or stalled" ;;
        33)
            FAIL_REASON="the server cannot resume (no byte ranges); starting over"
            rm -f -- "$PART"
            ;;
        *) FAIL_REASON="curl failed for $URL: ${detail:-exit $rc}" ;;
    esac
    return 1
}

fetch_wget() {
    local rc=0 log="$DOWNLOADS/.indoor.wget.log"
    local args=(--continue --tries=1 --timeout=60 --output-document="$PART")
    if [ -t 2 ]; then # progress on the terminal, and a copy in the log for the HTTP status
        wget "${args[@]}" --progress=bar "$URL" 2>&1 | tee "$log" >&2 || rc=$?
    else
        wget "${args[@]}" --no-verbose "$URL" 2>"$log" || rc=$?
    fi
    if [ "$rc" -eq 0 ]; then
        rm -f -- "$log"
        return 0
    fi
    local code detail
    code=$(grep -Eo 'ERROR [0-9]{3}' "$log" 2>/dev/null | tail -n 1 | cut -c7- || true)
    detail=$(grep -v '^[[:space:]]*$' "$log" 2>/dev/null | tail -n 1 || true)
    rm -f -- "$log"
    case "$rc" in
        8)
            if [ -n "$code" ]; then
                FAIL_REASON="HTTP $code from $URL"
                retryable_status "$code" || FAIL_FATAL=1
            else
                FAIL_REASON="the server of $URL answered with an error: ${detail:-wget exit 8}"
            fi
            ;;
        2) FAIL_REASON="wget cannot use the address $URL (${detail:-exit 2})" FAIL_FATAL=1 ;;
        3) FAIL_REASON="cannot write $PART (disk full?)" FAIL_FATAL=1 ;;
        4) FAIL_REASON="network failure (${detail:-connection lost})" ;;
        *) FAIL_REASON="wget failed for $URL: ${detail:-exit $rc}" ;;
    esac
    # wget can leave an empty file behind; an empty partial file is no progress.
    if [ -f "$PART" ] && [ ! -s "$PART" ]; then rm -f -- "$PART"; fi
    return 1
}

download() {
    pick_downloader
    if [ -f "$PART" ] && [ "$(cat "$PART_URL" 2>/dev/null || true)" != "$URL" ]; then
        say "discarding $PART: it comes from another address"
        rm -f -- "$PART"
    fi
    printf '%s\n' "$URL" >"$PART_URL"
    say "downloading $URL with $DOWNLOADER into $PART"
    local attempt=1 delay=$RETRY_DELAY
    while :; do
        if [ -s "$PART" ]; then
            say "attempt $attempt/$RETRIES: resuming after $(file_size "$PART") bytes"
        else
            say "attempt $attempt/$RETRIES"
        fi
        FAIL_REASON="" FAIL_FATAL=0
        if "fetch_$DOWNLOADER"; then
            break
        fi
        if [ "$FAIL_FATAL" -eq 1 ]; then
            if [ -f "$PART" ] && [ ! -s "$PART" ]; then rm -f -- "$PART"; fi
            die "download failed: $FAIL_REASON (not retrying)"
        fi
        if [ "$attempt" -ge "$RETRIES" ]; then
            local kept=""
            if [ -s "$PART" ]; then kept="; $(file_size "$PART") bytes kept in $PART, run again to resume"; fi
            die "download of $URL failed after $attempt attempts: $FAIL_REASON$kept"
        fi
        say "attempt $attempt failed: $FAIL_REASON; retrying in ${delay}s"
        sleep "$delay"
        attempt=$((attempt + 1))
        delay=$((delay * 2 > 60 ? 60 : delay * 2))
    done
    [ -f "$PART" ] || die "the download of $URL produced no file"
    mv -f -- "$PART" "$TAR"
    rm -f -- "$PART_URL"
    say "downloaded $TAR ($(file_size "$TAR") bytes)"
}

if [ -f "$TAR" ]; then
    say "using the already downloaded $TAR ($(file_size "$TAR") bytes)"
else
    download
fi

# ---------------------------------------------------------------------------------------------------------------
# 4. Verify the archive; a broken one is deleted so that the next run fetches it afresh.
WORK=$(mktemp -d "$RAW_DIR/${TMP_PREFIX}XXXXXX") || die "cannot create a temporary folder in $RAW_DIR"
say "checking the archive (tar -tf)"
if ! tar -tf "$TAR" >"$WORK/list" 2>"$WORK/tar.log"; then
    reason=$(grep -v '^[[:space:]]*$' "$WORK/tar.log" | head -n 1 || true)
    rm -f -- "$TAR"
    die "$TAR is not a valid tar archive (${reason:-tar -tf failed}); deleted it, run again to download it afresh"
fi
if [ ! -s "$WORK/list" ]; then
    rm -f -- "$TAR"
    die "$TAR is an empty archive; deleted it, run again to download it afresh"
fi
if grep -Eq '^/|(^|/)\.\.(/|$)' "$WORK/list"; then
    rm -f -- "$TAR"
    die "$TAR holds absolute or '..' paths; refusing to extract it (deleted it)"
fi

# ---------------------------------------------------------------------------------------------------------------
# 5. Extract next to the destination, find the image root, count, then move into place in one rename.
say "extracting into $WORK"
mkdir -- "$WORK/x"
if ! tar -xf "$TAR" -C "$WORK/x" 2>"$WORK/tar.log"; then
    reason=$(grep -v '^[[:space:]]*$' "$WORK/tar.log" | head -n 1 || true)
    die "extracting $TAR failed (${reason:-tar -xf failed}); the archive is kept, run again to retry"
fi

# The image root: descend through single wrapper folders (the tar's top 'Images/') down to the category folders.
only_wrapper_dir() { # prints the only visible entry of $1 when it is a folder that holds only folders
    local dir=$1 child
    [ "$(find "$dir" -mindepth 1 -maxdepth 1 ! -name '.*' | wc -l | tr -d ' ')" = 1 ] || return 1
    child=$(find "$dir" -mindepth 1 -maxdepth 1 ! -name '.*')
    [ -d "$child" ] && [ ! -L "$child" ] || return 1
    [ -z "$(find "$child" -mindepth 1 -maxdepth 1 ! -name '.*' ! -type d | head -n 1)" ] || return 1
    printf '%s\n' "$child"
}
src="$WORK/x"
while next=$(only_wrapper_dir "$src"); do
    src=$next
done
[ "$src" = "$WORK/x" ] || say "using ${src#"$WORK/x/"}/ as the image root"

images=$(find "$src" -type f ! -name '.*' | wc -l | tr -d ' ')
categories=$(find "$src" -mindepth 1 -maxdepth 1 -type d ! -name '.*' | wc -l | tr -d ' ')
if [ "$images" -eq 0 ]; then
    rm -f -- "$TAR"
    die "$TAR holds no images; deleted it"
fi
say "found $images images in $categories categories"
if [ -n "$EXPECTED" ] && [ "$images" -ne "$EXPECTED" ]; then
    warn "expected $EXPECTED images, found $images: the archive at $URL is not the MIT Indoor67 that was published"
fi

{
    printf 'images=%s\n' "$images"
    printf 'categories=%s\n' "$categories"
    printf 'url=%s\n' "$URL"
    printf 'date=%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$src/.complete"

[ ! -e "$ROOT" ] || die "$ROOT appeared while extracting; not replacing it"
mv -- "$src" "$ROOT" || die "cannot move $src to $ROOT"
rm -rf -- "$WORK"
WORK=""

if [ "$KEEP_TAR" = 1 ]; then
    say "kept $TAR (INDOOR_KEEP_TAR=1)"
else
    rm -f -- "$TAR"
    say "deleted $TAR (set INDOOR_KEEP_TAR=1 to keep it)"
fi
say "done: $images images in $categories categories in $ROOT"
