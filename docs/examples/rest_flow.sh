#!/bin/sh
# Backend side of a session with curl: log in with the client's keys, then
# create an enrollment session for one user. Prints the session as JSON; the
# browser only needs its websocket_url.
# Environment: BASE_URL (e.g. http://localhost:8000), API_KEY, SECRET_KEY, USER_ID.
set -eu

# 1. Client authentication (R1): api_key + secret_key -> a JWT valid for 1 h
TOKEN=$(curl -sf -X POST "$BASE_URL/api/auth/client/" \
  -H "Content-Type: application/json" \
  -d "{\"api_key\": \"$API_KEY\", \"secret_key\": \"$SECRET_KEY\"}" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')

# 2. Enrollment session (R2): 3 good frames; liveness off here so that any
#    recorded frames complete it (for real users keep the default true)
curl -sf -X POST "$BASE_URL/api/auth/enrollment/" \
  -H "Authorization: Bearer $TOKEN" \
  -H "Content-Type: application/json" \
  -d "{
    \"user_id\": \"$USER_ID\",
    \"require_liveness\": false,
    \"metadata\": {\"min_frames_required\": 3, \"required_blinks\": 0}
  }"
