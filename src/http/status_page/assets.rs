//! The status page's fixed parts, inlined in every response: the document head with its
//! stylesheet, and the script behind the replay buttons.

pub(super) const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>hookrelay status</title>
<style>
:root{--fg:#1d232a;--muted:#6b7480;--line:#dde2e8;--bg:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e}
*{box-sizing:border-box}
body{margin:0;padding:24px 32px;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:22px;margin:0 0 6px}h2{font-size:16px;margin:28px 0 8px}
.muted{color:var(--muted);font-weight:normal}
.totals span{margin-right:22px}.totals b{font-size:18px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid var(--line)}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{background:#eef1f4;font-weight:600;font-size:13px}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
code{font:12px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.err{color:var(--bad);font-size:12px;max-width:360px;overflow-wrap:anywhere}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.badge.ok{background:var(--ok)}.badge.warn{background:var(--warn)}.badge.bad{background:var(--bad)}
.note{background:#fff8c5;border:1px solid #e9d67a;padding:6px 10px}
button{font:inherit;font-size:12px;padding:2px 10px;cursor:pointer}
</style></head><body>
"#;

/// Replays through the admin API with the token from `#token=…`, session storage, or a prompt.
pub(super) const SCRIPT: &str = r#"<script>
(function(){
  var key='hookrelay-admin-token';
  var m=location.hash.match(/(?:^#|&)token=([^&]+)/);
  if(m){try{sessionStorage.setItem(key,decodeURIComponent(m[1]));}catch(e){}
    history.replaceState(null,'',location.pathname+location.search);}
  function token(){
    var t=null;try{t=sessionStorage.getItem(key);}catch(e){}
    if(!t){t=prompt('Admin token for the replay (kept for this tab only):');
      if(t){try{sessionStorage.setItem(key,t);}catch(e){}}}
    return t;
  }
  document.querySelectorAll('button.replay').forEach(function(b){
    b.addEventListener('click',function(){
      var out=b.parentNode.querySelector('.result');var t=token();if(!t){return;}
      b.disabled=true;out.textContent='replaying…';
      fetch('/v1/dead-letters/'+encodeURIComponent(b.dataset.id)+'/replay',
        {method:'POST',headers:{'Authorization':'Bearer '+t}})
      .then(function(r){return r.json().then(function(j){return [r.status,j];});})
      .then(function(a){
        if(a[0]===200){out.textContent='queued as delivery '+a[1].delivery;}
        else{if(a[0]===401||a[0]===403){try{sessionStorage.removeItem(key);}catch(e){}}
          out.textContent='failed: '+(a[1].message||a[1].error||a[0]);b.disabled=false;}
      })
      .catch(function(e){out.textContent='failed: '+e;b.disabled=false;});
    });
  });
})();
</script>
"#;
