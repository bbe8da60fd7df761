"""WordPress installs, the plugin is active and its tables exist."""

from __future__ import annotations

from .wp_harness import WordPressSite


async def test_plugin_active(site: WordPressSite) -> None:
    data = await site.php(
        "global $wpdb; return ["
        " 'active' => is_plugin_active('firm-bridge/firm-bridge.php'),"
        " 'tables' => $wpdb->get_col($wpdb->prepare('SHOW TABLES LIKE %s', $wpdb->prefix . 'firm_bridge%')),"
        " 'roles' => array_keys(wp_roles()->roles),"
        " 'autoload' => $wpdb->get_var($wpdb->prepare(\"SELECT autoload FROM {$wpdb->options} WHERE option_name = %s\", 'firm_bridge_secret')),"
        "];"
    )
    assert data["active"] is True
    assert sorted(data["tables"]) == [
        "wp_firm_bridge_notices",
        "wp_firm_bridge_outbox",
        "wp_firm_bridge_seen",
    ]
    assert {
        "firm_partner",
        "firm_associate",
        "firm_paralegal",
        "firm_assistant",
        "firm_client",
    } <= set(data["roles"])
    # The shared secret is not loaded into every request's option cache.
    assert data["autoload"] == "no"
