/*!
 * faceauth.js - browser client of the faceauth WebSocket protocol.
 * Dependency-free. Served by faceauthd at /sdk/faceauth.js.
 *
 * The page gets a websocket_url from ITS OWN backend (which holds the
 * api_key/secret_key and creates the session over REST); this library only
 * opens the camera, streams frames (JPEG, quality 0.8, 8-10 fps), reports
 * progress and live guidance, and hands back the completion message. It never
 * sees a secret and never decrypts: the backend does, or takes the outcome
 * from GET /api/auth/sessions/<token>/.
 *
 *   const cam = await FaceAuth.openCamera(videoElement);
 *   const result = await FaceAuth.run({
 *     websocketUrl, video: videoElement,
 *     onProgress: (p) => bar.value = p.framesProcessed / p.targetSamples,
 *     onGuidance: (g) => hint.textContent = g.text,
 *   });
 *   // result.type: "enrollment_complete" | "authentication_complete"
 *   FaceAuth.stopCamera(cam);
 */
(function (root, factory) {
  'use strict';
  var api = factory();
  if (typeof module === 'object' && module.exports) module.exports = api;
  else root.FaceAuth = api;
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  var VERSION = '1.0.0';
  var MAX_FPS = 10; /* the server accepts one frame per 100 ms per session */

  /* Close codes of the protocol (R9). */
  var CLOSE_CODES = {
    1000: 'session complete',
    1001: 'server shutting down',
    1006: 'connection lost',
    4000: 'error',
    4400: 'bad request',
    4401: 'session expired',
    4403: 'session already used or finished',
    4404: 'session not found',
    4429: 'too many frames (rate limit)',
    4500: 'internal server error'
  };

  /* Short guidance for the machine-readable reasons of frame_processed. The
   * server's own `message` is passed along as `detail`. */
  var GUIDANCE = {
    no_face: 'Face the camera',
    multiple_faces: 'Only one person in the picture, please',
    face_too_small: 'Move closer',
    not_centered: 'Center your face',
    too_dark: 'More light, please',
    too_bright: 'Too bright: avoid light behind or on the camera',
    low_contrast: 'Improve the lighting on your face',
    blurry: 'Hold still',
    not_frontal: 'Look straight at the camera',
    face_unclear: 'Uncover your face',
    duplicate_frame: 'The camera image is not changing',
    face_changed: 'The same person must stay in front of the camera',
    liveness_failed: 'Blink and move your head a little',
    inconsistent_samples: 'The same person must stay in front of the camera',
    duplicate_face: 'This face is already enrolled as another user',
    decode_failed: 'The camera image could not be read'
  };

  function FaceAuthError(message, code, reason) {
    var e = new Error(message);
    e.name = 'FaceAuthError';
    e.code = code || 0; /* close or error code when there is one */
    e.reason = reason || null;
    return e;
  }

  /* Open the user-facing camera into `video` (an HTMLVideoElement). Resolves
   * with the MediaStream once the first frame can be drawn. */
  function openCamera(video, opts) {
    opts = opts || {};
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      return Promise.reject(FaceAuthError(
        'No camera access in this browser (a secure context, https:// or localhost, is needed)'));
    }
    var constraints = {
      audio: false,
      video: {
        facingMode: 'user',
        width: { ideal: opts.width || 640 },
        height: { ideal: opts.height || 480 }
      }
    };
    return navigator.mediaDevices.getUserMedia(constraints).then(function (stream) {
      video.setAttribute('playsinline', '');
      video.muted = true;
      video.srcObject = stream;
      return new Promise(function (resolve, reject) {
        function ready() {
          if (video.videoWidth > 0) resolve(stream);
          else setTimeout(ready, 50);
        }
        video.onloadedmetadata = function () {
          var p = video.play();
          if (p && p.catch) p.catch(reject);
          ready();
        };
      });
    });
  }

  function stopCamera(stream) {
    if (stream && stream.getTracks) stream.getTracks().forEach(function (t) { t.stop(); });
  }

  /* The current video frame as a JPEG data URL (canvas.toDataURL), scaled
   * down to maxWidth. */
  function captureFrame(video, canvas, quality, maxWidth) {
    var w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    if (maxWidth && w > maxWidth) {
      h = Math.round(h * maxWidth / w);
      w = maxWidth;
    }
    if (canvas.width !== w) canvas.width = w;
    if (canvas.height !== h) canvas.height = h;
    canvas.getContext('2d').drawImage(video, 0, 0, w, h);
    return canvas.toDataURL('image/jpeg', quality);
  }

  /* Guidance for one frame_processed message. */
  function guidanceFor(msg, requireLiveness) {
    if (msg.reason) {
      return {
        reason: msg.reason,
        text: GUIDANCE[msg.reason] || msg.message || msg.reason,
        detail: msg.message || ''
      };
    }
    if (requireLiveness && !msg.liveness_verified) {
      var text = 'Blink naturally';
      if (typeof msg.blinks_required === 'number' && typeof msg.blinks_detected === 'number') {
        text = msg.blinks_detected < msg.blinks_required ? 'Blink naturally' :
          'Turn your head a little';
      }
      return { reason: 'liveness_pending', text: text, detail: '' };
    }
    return { reason: null, text: 'Hold still', detail: '' };
  }

  /*
   * Run one session over its WebSocket. Options:
   *   websocketUrl  (required) from your backend's session response
   *   video         (required) an HTMLVideoElement showing the camera
   *   fps           frames per second, 1-10 (default 8)
   *   quality       JPEG quality (default 0.8)
   *   maxWidth      scale frames down to this width (default 640)
   *   maxInFlight   frames sent but not yet answered (default 2)
   *   timeoutMs     give up after this long (default: until the session expires)
   *   onOpen(info)          connection_established
   *   onProgress(p)         every frame_processed: {framesProcessed, targetSamples,
   *                         success, livenessVerified, qualityScore, reason, message, raw}
   *   onGuidance(g)         {reason, text, detail} to show the user
   *   onServerError(e)      an error message that keeps the socket open ({error, code})
   * Returns {promise, stop()}: the promise resolves with the completion message
   * (enrollment_complete / authentication_complete, encrypted_data included)
   * and rejects with a FaceAuthError (code = close code) otherwise.
   */
  function start(opts) {
    if (!opts || !opts.websocketUrl || !opts.video) {
      throw FaceAuthError('FaceAuth.start needs websocketUrl and video');
    }
    var fps = Math.min(Math.max(opts.fps || 8, 1), MAX_FPS);
    var interval = Math.ceil(1000 / fps);
    var quality = opts.quality || 0.8;
    var maxWidth = opts.maxWidth === undefined ? 640 : opts.maxWidth;
    var maxInFlight = opts.maxInFlight || 2;
    var canvas = document.createElement('canvas');
    var ws = new WebSocket(opts.websocketUrl);
    var timer = null, deadline = null, inFlight = 0, lastSent = 0, lastReply = 0;
    var info = null, completion = null, settled = false, stopped = false;
    var lastError = null;
    var resolveP, rejectP;
    var promise = new Promise(function (res, rej) { resolveP = res; rejectP = rej; });

    function call(fn, arg) {
      if (typeof fn === 'function') {
        try { fn(arg); } catch (e) { if (typeof console !== 'undefined') console.error(e); }
      }
    }

    function finish(err) {
      if (timer) clearInterval(timer);
      if (deadline) clearTimeout(deadline);
      timer = deadline = null;
      if (settled) return;
      settled = true;
      if (err) rejectP(err);
      else resolveP(completion);
    }

    function tick() {
      if (ws.readyState !== WebSocket.OPEN || completion) return;
      var now = Date.now();
      /* a reply lost to the server's newest-frame-wins rule must not stall us */
      if (inFlight >= maxInFlight && now - Math.max(lastSent, lastReply) > 2000) inFlight = 0;
      if (inFlight >= maxInFlight || now - lastSent < interval) return;
      var image = captureFrame(opts.video, canvas, quality, maxWidth);
      if (!image) return;
      ws.send(JSON.stringify({ type: 'frame', image: image }));
      lastSent = now;
      inFlight++;
    }

    ws.onopen = function () {
      /* the timer runs a little faster than the frame interval; tick() keeps
       * each frame at least `interval` ms after the previous one */
      timer = setInterval(tick, Math.max(20, Math.floor(interval / 4)));
    };

    ws.onmessage = function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      switch (m.type) {
        case 'connection_established':
          info = m;
          if (opts.timeoutMs) {
            deadline = setTimeout(function () { stop('timeout'); }, opts.timeoutMs);
          }
          call(opts.onOpen, m);
          break;
        case 'frame_processed':
          inFlight = Math.max(0, inFlight - 1);
          lastReply = Date.now();
          call(opts.onProgress, {
            framesProcessed: m.frames_processed,
            targetSamples: m.target_samples,
            success: m.success,
            livenessVerified: m.liveness_verified,
            qualityScore: m.quality_score,
            blinksDetected: m.blinks_detected,
            reason: m.reason || null,
            message: m.message || null,
            raw: m
          });
          call(opts.onGuidance, guidanceFor(m, info ? info.require_liveness : true));
          break;
        case 'enrollment_complete':
        case 'authentication_complete':
          completion = m;
          if (timer) clearInterval(timer);
          timer = null;
          break;
        case 'error':
          inFlight = Math.max(0, inFlight - 1);
          lastReply = Date.now();
          lastError = m;
          call(opts.onServerError, m);
          break;
        default:
          break; /* pong and future message types */
      }
    };

    ws.onclose = function (ev) {
      if (completion) {
        finish(null);
        return;
      }
      var text = CLOSE_CODES[ev.code] || ('closed with code ' + ev.code);
      if (stopped) text = 'stopped';
      else if (lastError && lastError.code === ev.code && lastError.error) text = lastError.error;
      finish(FaceAuthError(text, ev.code, stopped ? 'stopped' : null));
    };

    ws.onerror = function () { /* onclose follows with the code */ };

    function stop(why) {
      stopped = true;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        ws.close(1000, why || 'stopped by the page');
      }
      finish(FaceAuthError(why === 'timeout' ? 'timed out' : 'stopped', 0, why || 'stopped'));
    }

    return { promise: promise, stop: stop, socket: ws };
  }

  /* start() as a promise only. */
  function run(opts) {
    return start(opts).promise;
  }

  return {
    version: VERSION,
    openCamera: openCamera,
    stopCamera: stopCamera,
    captureFrame: captureFrame,
    start: start,
    run: run,
    guidanceFor: guidanceFor,
    GUIDANCE: GUIDANCE,
    CLOSE_CODES: CLOSE_CODES,
    MAX_FPS: MAX_FPS
  };
});
