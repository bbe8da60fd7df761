var t="firm-chat-logout";try{localStorage.setItem(t,String(Date.now())),localStorage.removeItem(t)}catch{}
