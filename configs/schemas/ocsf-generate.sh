#!/bin/sh
# Writes ocsf-1.8.0-detection_finding.schema.json: the JSON Schema (draft 2020-12) of the OCSF
# 1.8.0 Detection Finding class (class_uid 2004, no profiles), with every object it references
# embedded under `$defs`, so it validates offline. The OCSF releases come compiled inside the
# PyPI package ocsf-json-schema; nothing is fetched after the install.
#
#   sh configs/schemas/ocsf-generate.sh        (VENV=<dir> to choose the virtualenv)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv=${VENV:-"${TMPDIR:-/tmp}/ocsf-json-schema-venv"}
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet 'ocsf-json-schema==1.2.0'
"$venv/bin/python" - > "$here/ocsf-1.8.0-detection_finding.schema.json" <<'PY'
import json
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

ocsf = OcsfJsonSchemaEmbedded(get_ocsf_schema(version="1.8.0"))
schema = ocsf.get_class_schema(ocsf.lookup_class_name_from_uid(2004))
print(json.dumps(schema, indent=2, sort_keys=True))
PY
