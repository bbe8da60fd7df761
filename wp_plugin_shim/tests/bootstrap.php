<?php
/**
 * The plugin's pure units load without WordPress; the integration tests (tests/wp/ in the
 * repository) run them inside a real WordPress.
 *
 * @package Firm_Bridge
 */

define( 'FIRM_BRIDGE_UNIT_TESTS', true );
require_once dirname( __DIR__ ) . '/includes/class-firm-bridge-signer.php';
require_once dirname( __DIR__ ) . '/includes/class-firm-bridge-mapper.php';
require_once dirname( __DIR__ ) . '/includes/class-firm-bridge-order.php';
require_once dirname( __DIR__ ) . '/includes/class-firm-bridge-handover.php';
require_once dirname( __DIR__ ) . '/includes/class-firm-bridge-policy-doc.php';
require_once dirname( __DIR__ ) . '/includes/class-firm-bridge-changes.php';
