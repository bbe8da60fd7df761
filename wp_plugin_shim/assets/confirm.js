/* Asks before what cannot be undone. A form with data-firm-confirm asks its question before it
   is sent; so does a form holding a checkbox with data-firm-confirm-on that was just ticked; a
   link or button with data-firm-confirm asks before it acts. Screens may add questions for core's
   own controls (window.firmBridgeConfirm: {clicks: {selector: question}, bulk: {action: question}}).
   Listeners run in the capture phase, before core's own handlers, so a "Cancel" stops them. */
( function () {
	var extra = window.firmBridgeConfirm || {};
	var clicks = extra.clicks || {};
	var bulk = extra.bulk || {};

	function stop( event ) {
		event.preventDefault();
		event.stopImmediatePropagation();
	}

	document.addEventListener( 'submit', function ( event ) {
		var form = event.target;
		if ( ! form || ! form.getAttribute ) {
			return;
		}
		var questions = [];
		if ( form.getAttribute( 'data-firm-confirm' ) ) {
			questions.push( form.getAttribute( 'data-firm-confirm' ) );
		}
		form.querySelectorAll( 'input[type=checkbox][data-firm-confirm-on]' ).forEach( function ( box ) {
			if ( box.checked && ! box.defaultChecked ) {
				questions.push( box.getAttribute( 'data-firm-confirm-on' ) );
			}
		} );
		[ 'action', 'action2' ].forEach( function ( name ) {
			var select = form.querySelector( 'select[name="' + name + '"]' );
			var submitter = event.submitter;
			var used = submitter && ( 'action2' === name ? 'doaction2' : 'doaction' ) === submitter.id;
			if ( select && used && bulk[ select.value ] ) {
				questions.push( bulk[ select.value ] );
			}
		} );
		for ( var i = 0; i < questions.length; i++ ) {
			if ( ! window.confirm( questions[ i ] ) ) {
				stop( event );
				return;
			}
		}
	}, true );

	document.addEventListener( 'click', function ( event ) {
		if ( ! event.target.closest ) {
			return;
		}
		var own = event.target.closest( 'a[data-firm-confirm], button[data-firm-confirm]' );
		var question = own ? own.getAttribute( 'data-firm-confirm' ) : '';
		Object.keys( clicks ).forEach( function ( selector ) {
			if ( ! question && event.target.closest( selector ) ) {
				question = clicks[ selector ];
			}
		} );
		if ( question && ! window.confirm( question ) ) {
			stop( event );
		}
	}, true );
} )();
