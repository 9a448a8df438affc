/* The demo page: what a client's page does with faceauth.js, with this
 * server's demo backend (/demo/api/..., only with faceauthd --demo) standing
 * in for the client's own backend. The backend creates the session, the page
 * streams the camera with FaceAuth.start, and once the socket reports the
 * result the page asks the backend for the outcome, which the backend took
 * from the server (GET /api/auth/sessions/<token>/) and decrypted with the
 * demo client's secret key. */
(function () {
  'use strict';

  var $ = function (id) { return document.getElementById(id); };
  var video = $('video'), guidance = $('guidance'), progress = $('progress');
  var statusEl = $('status'), resultEl = $('result'), logEl = $('log');
  var buttons = ['btn-enroll', 'btn-verify', 'btn-identify'].map($);
  var stream = null, current = null;

  function setStatus(text, state) {
    statusEl.textContent = text;
    statusEl.dataset.state = state || 'busy';
  }

  function log(text) {
    var li = document.createElement('li');
    li.textContent = new Date().toISOString().slice(11, 23) + ' ' + text;
    logEl.appendChild(li);
    while (logEl.children.length > 200) logEl.removeChild(logEl.firstChild);
    logEl.scrollTop = logEl.scrollHeight;
  }

  function busy(on) {
    buttons.forEach(function (b) { b.disabled = on; });
    $('btn-stop').disabled = !on;
  }

  function showResult(outcome, title, details) {
    resultEl.hidden = false;
    resultEl.dataset.outcome = outcome;
    resultEl.innerHTML = '';
    var h = document.createElement('h3');
    h.textContent = title;
    resultEl.appendChild(h);
    if (details) {
      var pre = document.createElement('pre');
      pre.textContent = typeof details === 'string' ? details : JSON.stringify(details, null, 2);
      resultEl.appendChild(pre);
    }
  }

  /* The demo backend (your backend in a real integration). */
  function backend(method, path, body) {
    return fetch('/demo/api/' + path, {
      method: method,
      headers: body ? { 'Content-Type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) {
          var e = new Error(j.error || ('HTTP ' + r.status));
          e.status = r.status;
          throw e;
        }
        return j;
      });
    });
  }

  function ensureCamera() {
    if (stream) return Promise.resolve(stream);
    guidance.textContent = 'Starting the camera…';
    return FaceAuth.openCamera(video).then(function (s) {
      stream = s;
      log('camera ' + video.videoWidth + 'x' + video.videoHeight);
      return s;
    });
  }

  function begin(kind) {
    var userId = $('user-id').value.trim();
    var body = { type: kind === 'enroll' ? 'enrollment' : 'authentication',
                 require_liveness: $('liveness').checked };
    if (kind !== 'identify') {
      if (!userId) {
        setStatus('Enter a user id first.', 'error');
        return;
      }
      body.user_id = userId;
    }
    if (kind === 'enroll') body.replace = $('replace').checked;

    busy(true);
    resultEl.hidden = true;
    resultEl.dataset.outcome = 'none';
    progress.value = 0;
    setStatus('Creating the session…');
    var session;
    ensureCamera().then(function () {
      return backend('POST', 'sessions', body);
    }).then(function (s) {
      session = s;
      log('session ' + (s.enrollment_id || s.authentication_id) + ' created, ' +
          s.target_samples + ' good frames needed');
      setStatus(kind === 'enroll' ? 'Enrolling: look at the camera…' :
                'Authenticating: look at the camera…');
      current = FaceAuth.start({
        websocketUrl: s.websocket_url,
        video: video,
        fps: 8,
        onOpen: function (m) { log('connected: ' + m.session_type + ', ' + m.status); },
        onProgress: function (p) {
          progress.max = p.targetSamples || 1;
          progress.value = p.framesProcessed;
          log('frame: ' + (p.success ? 'counted ' : 'not counted ') + p.framesProcessed + '/' +
              p.targetSamples + ' quality ' + (p.qualityScore || 0).toFixed(2) +
              (p.reason ? ' [' + p.reason + ']' : ''));
        },
        onGuidance: function (g) {
          guidance.textContent = g.text;
          guidance.title = g.detail || '';
        },
        onServerError: function (e) { log('server: ' + e.code + ' ' + e.error); }
      });
      return current.promise;
    }).then(function (done) {
      log(done.type + ' received; asking the backend for the outcome');
      guidance.textContent = 'Done';
      return backend('GET', 'sessions/' + encodeURIComponent(session.session_token));
    }).then(function (view) {
      var r = view.result || {};
      if (!view.verified) {
        showResult('error', 'The result could not be verified', view);
      } else if (r.type === 'enrollment_complete') {
        showResult('enrolled', 'Enrolled ' + (view.user_id || ''), view.decrypted);
      } else if (r.authenticated) {
        showResult('authenticated', 'Welcome, ' + r.user_id + ' (confidence ' +
                   Number(r.confidence).toFixed(2) + ')', view.decrypted);
      } else {
        showResult('refused', 'Not recognised', view.decrypted);
      }
      setStatus('Finished: ' + view.status + '.', 'idle');
    }).catch(function (e) {
      log('error: ' + e.message + (e.code ? ' (' + e.code + ')' : ''));
      guidance.textContent = e.reason === 'stopped' ? 'Stopped' : 'Something went wrong';
      setStatus('Error: ' + e.message + (e.code ? ' (code ' + e.code + ')' : ''), 'error');
      if (e.reason !== 'stopped') showResult('error', 'Error', e.message);
    }).then(function () {
      current = null;
      busy(false);
    });
  }

  $('btn-enroll').onclick = function () { begin('enroll'); };
  $('btn-verify').onclick = function () { begin('verify'); };
  $('btn-identify').onclick = function () { begin('identify'); };
  $('btn-stop').onclick = function () { if (current) current.stop(); };
})();
