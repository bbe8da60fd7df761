/* Fills every .firm-chat-unread on the page (the admin bar's "Messages", the chat page's menu
   item, any element a theme adds) with the logged-in person's unread count, asked of
   /wp-json/firm-bridge/v1/unread, and again every minute while the page is visible. On the chat
   page the widget counts itself and says so with the firm-chat:unread event: then this stops. */
( function () {
	var config = document.getElementById( 'firm-bridge-unread' );
	if ( ! config || ! window.fetch ) {
		return;
	}
	var widget = false;
	var timer = null;
	function show( total ) {
		document.querySelectorAll( '.firm-chat-unread' ).forEach( function ( el ) {
			el.textContent = total ? String( total ) : '';
			el.hidden = ! total;
		} );
	}
	function ask() {
		if ( widget || document.hidden ) {
			return;
		}
		fetch( config.getAttribute( 'data-url' ), {
			credentials: 'same-origin',
			headers: { 'X-WP-Nonce': config.getAttribute( 'data-nonce' ) }
		} )
			.then( function ( r ) {
				return r.ok ? r.json() : null;
			} )
			.then( function ( data ) {
				if ( ! widget && data && 'number' === typeof data.unread ) {
					show( data.unread );
				}
			} )
			.catch( function () {} );
	}
	window.addEventListener( 'firm-chat:unread', function () {
		widget = true;
		if ( timer ) {
			clearInterval( timer );
		}
	} );
	document.addEventListener( 'visibilitychange', ask );
	ask();
	timer = setInterval( ask, 60000 );
} )();
