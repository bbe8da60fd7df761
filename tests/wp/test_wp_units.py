"""The plugin's own units (PHPUnit), its signatures against the bridge's, its SQL discipline, and
its WP-CLI command."""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
from typing import Any

from bridge.core.policy import Policy, PolicyError
from bridge.web.signing import sign

from .wp_harness import PLUGIN, ROOT, WordPressSite, php_literal


async def test_phpunit_suite_passes() -> None:
    proc = await asyncio.create_subprocess_exec(
        "phpunit",
        "-c",
        str(PLUGIN / "phpunit.xml.dist"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=PLUGIN,
    )
    out = (await proc.communicate())[0].decode()
    assert proc.returncode == 0, out
    match = re.search(r"OK \((\d+) tests?, (\d+) assertions?\)", out)
    assert match and int(match.group(1)) >= 40, out


async def test_signatures_match_the_bridges() -> None:
    vectors = []
    for i in range(20):
        body = secrets.token_bytes(i * 7)  # arbitrary bytes, including none
        vectors.append(
            {
                "secret": secrets.token_urlsafe(8 + i),
                "method": ["put", "POST", "GET", "Delete"][i % 4],
                "path": f"/_firm/v1/people/{i}?x=%2F{i}&ü=1",
                "timestamp": str(1_700_000_000 + i),
                "request_id": secrets.token_hex(8 + i),
                "body": body.hex(),
            }
        )
    code = (
        f"require '{PLUGIN}/includes/class-firm-bridge-signer.php';"
        f" $v = {php_literal(vectors)}; $out = [];"
        " foreach ($v as $x) { $out[] = Firm_Bridge_Signer::sign($x['secret'], $x['method'],"
        " $x['path'], $x['timestamp'], $x['request_id'], hex2bin($x['body'])); }"
        " echo json_encode($out);"
    )
    proc = await asyncio.create_subprocess_exec(
        "php",
        "-d",
        "error_reporting=E_ALL",
        "-r",
        "define('FIRM_BRIDGE_UNIT_TESTS', 1);" + code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    expected = [
        sign(
            v["secret"],
            v["method"],
            v["path"],
            v["timestamp"],
            v["request_id"],
            bytes.fromhex(v["body"]),
        )
        for v in vectors
    ]
    assert json.loads(out) == expected


QUERY = re.compile(r"\$wpdb->(query|get_results|get_var|get_row|get_col)\(\s*")


def test_sql_goes_through_prepare() -> None:
    """Every query the plugin runs is built by $wpdb->prepare(), or is a literal that
    interpolates nothing but the table prefix."""
    checked = 0
    for path in sorted(PLUGIN.rglob("*.php")):
        if "/tests/" in str(path):
            continue
        text = path.read_text()
        for m in QUERY.finditer(text):
            rest = text[m.end() :]
            checked += 1
            if rest.startswith("$wpdb->prepare("):
                continue
            literal = re.match(r'"([^"\\]*)"\s*\)', rest)
            assert literal and set(re.findall(r"\{\$[^}]+\}", literal.group(1))) <= {
                "{$wpdb->prefix}"
            }, f"{path.name}: {rest[:120]}"
        # No request data goes into SQL text by hand anywhere.
        assert not re.search(r"\$wpdb->\w+\([^;]*\$_(GET|POST|REQUEST|COOKIE|SERVER)", text), (
            path.name
        )
    assert checked >= 10


async def test_wp_cli_command_runs_resync(site: WordPressSite) -> None:
    """WP-CLI itself is not packaged for Debian and cannot be fetched here, so the command class
    runs under a minimal stand-in for the WP_CLI facade; what it does is real WordPress work."""
    login = f"cli{secrets.token_hex(3)}"
    uid = await site.create_user(login, "firm_partner")
    result = await site.php(
        "class WP_CLI { public static $lines = [];"
        " public static function log($m) { self::$lines[] = $m; }"
        " public static function success($m) { self::$lines[] = 'Success: ' . $m; }"
        " public static function warning($m) { self::$lines[] = 'Warning: ' . $m; } }"
        " require_once FIRM_BRIDGE_DIR . '/includes/class-firm-bridge-cli.php';"
        " global $wpdb; $before = (int) $wpdb->get_var($wpdb->prepare("
        '"SELECT COALESCE(MAX(id), %d) FROM {$wpdb->prefix}firm_bridge_outbox", 0));'
        " $cli = new Firm_Bridge_CLI(); $cli->resync([], []); $cli->status([], []);"
        " $rows = Firm_Bridge_Outbox::rows(null, 10000, $before);"
        " return ['lines' => WP_CLI::$lines, 'objects' => array_map(fn($r) => $r['object_type'] . ':' . $r['object_id'], $rows)];"
    )
    assert re.match(r"\d+ requests queued\.", result["lines"][0])
    assert f"person:{uid}" in result["objects"]
    assert any(line.startswith("pending") for line in result["lines"])


def policy_variants() -> list[object]:
    """The shipped table, and ways of getting each of the bridge's rules wrong (and right)."""
    base = Policy.from_yaml((ROOT / "config" / "policy.yaml").read_text()).to_data()

    def changed(path: str, value: object) -> dict:
        doc = copy.deepcopy(base)
        *parents, last = path.split(".")
        node: Any = doc
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
        return doc

    variants: list[object] = [base, [], {"roles": []}, {"roles": {}}, {"version": 1}]
    for role in ("partner", "client", "administrator"):
        for value in (-1, 0, 99, 100, 50.0, 50.5, True, "50", None, DELETE):
            variants.append(changed(f"roles.{role}.power_level", value))
        for value in ("assigned", "none", "ASSIGNED", "all", 1, None, DELETE):
            variants.append(changed(f"roles.{role}.matter_rooms", value))
        for value in ([], ["firm_members"], ["nobody"], "firm_members", [1], {"a": 1}, DELETE):
            variants.append(changed(f"roles.{role}.conversations", value))
        variants += [changed(f"roles.{role}", DELETE), changed(f"roles.{role}", [1])]
        variants.append(changed(f"roles.{role}", "x"))
    for value in (1, 2, 100, 101, 8.0, False, "8", None, DELETE):
        variants.append(changed("max_group_size", value))
    variants += [changed("roles.judge", base["roles"]["client"]), changed("future", {"x": [1]})]
    variants += [
        changed("roles.paralegal.export_transcripts", True),
        changed("roles.partner.export_transcripts", DELETE),
        changed("roles.client.export_transcripts", "yes"),
        changed("roles.associate.export_transcripts", None),
    ]
    return variants


DELETE = object()


async def test_restrictions_refuses_exactly_what_the_bridge_refuses() -> None:
    """The plugin checks a role table by the bridge's rules before saving it: the same documents
    get the same verdict from Policy.from_data and from Firm_Bridge_Policy_Doc::parse, and a
    refusal names the same field."""
    docs = policy_variants()
    expected: list[str | None] = []
    for doc in docs:
        try:
            Policy.from_data(doc)
            expected.append(None)
        except PolicyError as e:
            expected.append(str(e))
    texts = [json.dumps(doc) for doc in docs]
    code = (
        f"require '{PLUGIN}/includes/class-firm-bridge-policy-doc.php';"
        f" $out = []; foreach ({php_literal(texts)} as $t) {{"
        " $p = Firm_Bridge_Policy_Doc::parse($t); $out[] = $p['error']; }"
        " echo json_encode($out);"
    )
    proc = await asyncio.create_subprocess_exec(
        "php",
        "-d",
        "error_reporting=E_ALL",
        "-r",
        "define('FIRM_BRIDGE_UNIT_TESTS', 1);" + code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0 and not err, err.decode()
    got = json.loads(out)
    assert sum(e is None for e in expected) >= 10 and sum(e is not None for e in expected) >= 40
    for doc, bridge, plugin in zip(docs, expected, got, strict=True):
        assert (bridge is None) == (plugin is None), (doc, bridge, plugin)
        if bridge is not None and "roles." in bridge:
            # The bridge says "policy: roles.client.power_level must be ..."; so does the plugin.
            field = re.search(r"roles\.\w+(\.\w+)?", bridge)
            assert field and field.group(0) in plugin, (bridge, plugin)
