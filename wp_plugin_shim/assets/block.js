/* The firm-bridge/chat block in the editor: a placeholder; the server renders the mount point. */
( function ( blocks, element, i18n ) {
	var el = element.createElement;
	blocks.registerBlockType( 'firm-bridge/chat', {
		apiVersion: 2,
		title: i18n.__( 'Firm chat', 'firm-bridge' ),
		description: i18n.__( 'Secure chat for the signed-in person: their matters and attorneys.', 'firm-bridge' ),
		category: 'widgets',
		icon: 'format-chat',
		supports: { html: false },
		edit: function () {
			return el( 'div', { className: 'firm-chat-placeholder' }, i18n.__( 'Secure chat appears here for signed-in clients and staff.', 'firm-bridge' ) );
		},
		save: function () {
			return null;
		},
	} );
} )( window.wp.blocks, window.wp.element, window.wp.i18n );
