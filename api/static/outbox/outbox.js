/* recruitmail outbox: a live page on the public GraphQL API, and its reference client.
 *
 * No build step and no library: a query over HTTP POST loads a snapshot, and a small
 * graphql-transport-ws client keeps it live (messageStatusChanged, bulkOperationProgress,
 * interviewResponseChanged). The buttons call retryMessage, cancelScheduledMessage and
 * cancelBulkOperation. The token is typed in, or handed over once in the URL fragment
 * (#token=…), and kept in sessionStorage (this tab only).
 *
 * Stable hooks for tests and scripts: each bulk operation's element has
 * data-bulk-operation-id, data-state, data-sent, data-failed, data-total; each listed
 * message has data-message-id and data-status; each count data-count-status, data-count.
 */
(function () {
  "use strict";

  var root = document.getElementById("outbox");
  var endpoint = new URL(root.getAttribute("data-endpoint") || "/graphql", window.location.href);
  endpoint.hash = "";
  endpoint.search = "";
  var wsEndpoint = new URL(endpoint.href);
  wsEndpoint.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

  var TOKEN_KEY = "recruitmail.outbox.token";
  var PROTOCOL = "graphql-transport-ws";
  var RECONNECT_MIN_MS = 1000;
  var RECONNECT_MAX_MS = 30000;
  var PING_EVERY_MS = 20000;
  var PONG_WITHIN_MS = 10000;
  var REFRESH_AFTER_MS = 600;
  var LIST_SIZE = 50;
  var RECENT_BULKS = 20;
  var FINAL_BULK = { COMPLETED: true, COMPLETED_WITH_ERRORS: true, CANCELLED: true };
  var PROBLEM = { FAILED: true, BOUNCED: true };

  var STATUS_LABEL = {
    SCHEDULED: "Scheduled", QUEUED: "Queued", SENDING: "Sending", SENT: "Sent",
    FAILED: "Failed", CANCELLED: "Cancelled", BOUNCED: "Bounced", RECEIVED: "Received",
  };
  var COUNTED = ["SCHEDULED", "QUEUED", "SENDING", "SENT", "FAILED", "BOUNCED", "CANCELLED"];
  var BULK_KIND = { EMAIL: "Bulk email", REJECTION: "Rejections" };
  var BULK_STATE = {
    SCHEDULED: "Scheduled", RUNNING: "Sending", COMPLETED: "Completed",
    COMPLETED_WITH_ERRORS: "Completed with errors", CANCELLED: "Cancelled",
  };
  var RESPONSE_LABEL = {
    ACCEPTED: "Accepted", DECLINED: "Declined", TENTATIVE: "Tentative",
    NEEDS_ACTION: "No answer yet",
  };

  // ---------------------------------------------------------------- GraphQL documents

  var MESSAGE_FIELDS =
    "fragment OutboxMessage on Message { id kind status subject error attempts createdAt " +
    "scheduledAt sentAt to candidate { id fullName email } bulkOperation { id } }";
  var BULK_FIELDS =
    "fragment OutboxBulk on BulkOperation { id kind state total queued sent failed " +
    "scheduledAt createdAt createdBy { name } }";
  var ANSWER_FIELDS =
    "fragment OutboxAnswer on InterviewResponseChange { response comment at " +
    "interview { id title startsAt application { candidate { fullName } } } }";
  var BULK_LISTS =
    "recent: bulkOperations(first: " + RECENT_BULKS + ") { edges { node { ...OutboxBulk } } } " +
    "running: bulkOperations(first: " + LIST_SIZE + ", state: RUNNING) " +
    "{ edges { node { ...OutboxBulk } } } " +
    "scheduledBulks: bulkOperations(first: " + LIST_SIZE + ", state: SCHEDULED) " +
    "{ edges { node { ...OutboxBulk } } } ";
  var MESSAGE_LISTS =
    "failed: messages(first: " + LIST_SIZE + ", status: FAILED) " +
    "{ totalCount edges { node { ...OutboxMessage } } } " +
    "bounced: messages(first: " + LIST_SIZE + ", status: BOUNCED) " +
    "{ totalCount edges { node { ...OutboxMessage } } } " +
    "scheduled: messages(first: " + LIST_SIZE + ", status: SCHEDULED) " +
    "{ totalCount edges { node { ...OutboxMessage } } } ";

  var SNAPSHOT_QUERY =
    "query OutboxSnapshot { viewer { name } company { name } " +
    "messageCounts(direction: OUTBOUND) { status count } " + BULK_LISTS + MESSAGE_LISTS +
    "interviewResponses(first: 10) { ...OutboxAnswer } } " +
    MESSAGE_FIELDS + " " + BULK_FIELDS + " " + ANSWER_FIELDS;
  var SUMMARY_QUERY =
    "query OutboxSummary { messageCounts(direction: OUTBOUND) { status count } " +
    BULK_LISTS + "} " + BULK_FIELDS;
  var MESSAGES_SUBSCRIPTION =
    "subscription OutboxMessages { messageStatusChanged { previousStatus status at " +
    "message { ...OutboxMessage } } } " + MESSAGE_FIELDS;
  var ANSWERS_SUBSCRIPTION =
    "subscription OutboxAnswers { interviewResponseChanged { ...OutboxAnswer } } " +
    ANSWER_FIELDS;
  var PROGRESS_SUBSCRIPTION =
    "subscription OutboxProgress($id: ID!) { bulkOperationProgress(id: $id) " +
    "{ ...OutboxBulk } } " + BULK_FIELDS;
  var RETRY_MUTATION =
    "mutation OutboxRetry($id: ID!) { retryMessage(id: $id) { message { ...OutboxMessage } " +
    "errors { code message } } } " + MESSAGE_FIELDS;
  var CANCEL_MESSAGE_MUTATION =
    "mutation OutboxCancelMessage($id: ID!) { cancelScheduledMessage(id: $id) " +
    "{ message { ...OutboxMessage } errors { code message } } } " + MESSAGE_FIELDS;
  var CANCEL_BULK_MUTATION =
    "mutation OutboxCancelBulk($id: ID!) { cancelBulkOperation(id: $id) " +
    "{ bulkOperation { ...OutboxBulk } errors { code message } } } " + BULK_FIELDS;

  // ---------------------------------------------------------------- small helpers

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "text") node.textContent = value;
        else if (key === "on") {
          Object.keys(value).forEach(function (ev) { node.addEventListener(ev, value[ev]); });
        } else node.setAttribute(key, value === true ? "" : String(value));
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  var dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  var zoneName = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";

  function timeEl(iso) {
    if (!iso) return null;
    var d = new Date(iso);
    if (isNaN(d.getTime())) return h("span", { text: iso });
    return h("time", { datetime: d.toISOString(), title: zoneName, text: dateFormat.format(d) });
  }

  function byNewest(field) {
    return function (a, b) {
      var x = a[field] || "", y = b[field] || "";
      return x < y ? 1 : x > y ? -1 : 0;
    };
  }

  var uid = 0;
  function nextId(prefix) { uid += 1; return prefix + "-" + uid; }

  function AuthError(message) { this.name = "AuthError"; this.message = message; }
  AuthError.prototype = Object.create(Error.prototype);
  function NetworkError(message) { this.name = "NetworkError"; this.message = message; }
  NetworkError.prototype = Object.create(Error.prototype);

  // ---------------------------------------------------------------- session state

  var session = null; // one signed-in view at a time; callbacks of an old one are ignored

  function Session(token) {
    this.token = token;
    this.stopped = false;
    this.ws = null;
    this.acked = false;
    this.everConnected = false;
    this.attempt = 0;
    this.timers = {};
    this.subs = {};        // operation id -> {payload, next, complete}
    this.bulkSubs = {};    // bulk id -> operation id
    this.opSeq = 0;
    this.bulks = {};       // id -> BulkOperation
    this.messages = {};    // id -> Message (problems and scheduled lists)
    this.answers = [];
    this.counts = {};
    this.refreshing = false;
    this.refreshAgain = false;
    this.loaded = false;
  }

  Session.prototype.alive = function () { return session === this && !this.stopped; };

  Session.prototype.request = function (query, variables) {
    var self = this;
    return fetch(endpoint.href, {
      method: "POST",
      credentials: "omit",
      cache: "no-store",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/graphql-response+json, application/json",
        "Authorization": "Bearer " + self.token,
      },
      body: JSON.stringify({ query: query, variables: variables || {} }),
    }).then(function (response) {
      return response.text().then(function (text) {
        var body = null;
        try { body = JSON.parse(text); } catch (e) { body = null; }
        var errors = (body && body.errors) || [];
        var unauthenticated = response.status === 401 || errors.some(function (e) {
          return e && e.extensions && e.extensions.code === "UNAUTHENTICATED";
        });
        if (unauthenticated) throw new AuthError("The token was not accepted.");
        if (!body || !body.data) {
          var why = errors.length ? errors[0].message : "HTTP " + response.status;
          throw new NetworkError("The server could not answer (" + why + ").");
        }
        if (errors.length) throw new Error(errors[0].message);
        return body.data;
      });
    }, function () {
      throw new NetworkError("The server cannot be reached.");
    });
  };

  Session.prototype.stop = function () {
    this.stopped = true;
    Object.keys(this.timers).forEach(function (k) { clearTimeout(this.timers[k]); }, this);
    this.timers = {};
    if (this.ws) {
      try { this.ws.close(1000, "signed out"); } catch (e) { /* already closed */ }
      this.ws = null;
    }
  };

  Session.prototype.setTimer = function (name, ms, fn) {
    var self = this;
    clearTimeout(self.timers[name]);
    self.timers[name] = setTimeout(function () {
      delete self.timers[name];
      if (self.alive()) fn();
    }, ms);
  };

  // The first load: a wrong token ends here with a message and no further request.
  Session.prototype.begin = function () {
    var self = this;
    setConnection("connecting", "Connecting…");
    self.request(SNAPSHOT_QUERY).then(function (data) {
      if (!self.alive()) return;
      self.loaded = true;
      showDashboard(data);
      self.applySnapshot(data);
      self.openSocket();
    }, function (err) {
      if (!self.alive()) return;
      if (err instanceof AuthError) { authFailed(err.message); return; }
      if (!view.dashboard) showDashboard(null);
      self.scheduleReconnect(err.message);
    });
  };

  Session.prototype.reload = function () {
    var self = this;
    return self.request(SNAPSHOT_QUERY).then(function (data) {
      if (!self.alive()) return;
      if (!view.dashboard || !view.dashboard.isConnected) showDashboard(data);
      else fillWho(data);
      self.applySnapshot(data);
    });
  };

  Session.prototype.applySnapshot = function (data) {
    var self = this;
    self.messages = {};
    [data.failed, data.bounced, data.scheduled].forEach(function (conn) {
      conn.edges.forEach(function (e) { self.messages[e.node.id] = e.node; });
    });
    self.answers = data.interviewResponses.slice();
    self.applySummary(data, true);
    renderMessages(self);
    renderAnswers(self);
  };

  Session.prototype.applySummary = function (data, replace) {
    var self = this;
    self.counts = {};
    data.messageCounts.forEach(function (c) { self.counts[c.status] = c.count; });
    var fresh = {};
    [data.recent, data.running, data.scheduledBulks].forEach(function (conn) {
      conn.edges.forEach(function (e) { fresh[e.node.id] = e.node; });
    });
    // Progress events may be newer than this answer: keep the further one.
    Object.keys(fresh).forEach(function (id) {
      var old = self.bulks[id];
      if (old && !replace && progressOf(old) > progressOf(fresh[id])) fresh[id] = old;
    });
    if (!replace) {
      // Keep what the page shows already (a bulk that finished stays until a reload).
      Object.keys(self.bulks).forEach(function (id) { if (!fresh[id]) fresh[id] = self.bulks[id]; });
    }
    self.bulks = fresh;
    renderCounts(self);
    renderBulks(self);
    renderMessages(self);
    self.followBulks();
  };

  function progressOf(b) {
    return (FINAL_BULK[b.state] ? 1e9 : 0) + b.sent + b.failed;
  }

  // Counts and the bulk list are re-read (debounced) after changes; the rows themselves
  // move with the subscriptions.
  Session.prototype.refreshSoon = function () {
    var self = this;
    if (self.timers.refresh) return;
    self.setTimer("refresh", REFRESH_AFTER_MS, function () { self.refresh(); });
  };

  Session.prototype.refresh = function () {
    var self = this;
    if (self.refreshing) { self.refreshAgain = true; return; }
    self.refreshing = true;
    self.request(SUMMARY_QUERY).then(function (data) {
      if (self.alive()) self.applySummary(data, false);
    }, function (err) {
      if (!self.alive()) return;
      if (err instanceof AuthError) authFailed(err.message);
      // Otherwise the websocket notices the outage and reconnects, then reloads.
    }).then(function () {
      self.refreshing = false;
      if (self.refreshAgain && self.alive()) { self.refreshAgain = false; self.refreshSoon(); }
    });
  };

  // ---------------------------------------------------------------- graphql-transport-ws

  Session.prototype.openSocket = function () {
    var self = this;
    var ws;
    try {
      ws = new WebSocket(wsEndpoint.href, PROTOCOL);
    } catch (e) {
      self.scheduleReconnect("The live connection could not be opened.");
      return;
    }
    self.ws = ws;
    self.acked = false;
    ws.onopen = function () {
      if (self.ws !== ws) return;
      ws.send(JSON.stringify({ type: "connection_init",
                               payload: { Authorization: "Bearer " + self.token } }));
    };
    ws.onmessage = function (event) {
      if (self.ws !== ws) return;
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      self.onFrame(ws, msg);
    };
    ws.onclose = function (event) {
      if (self.ws !== ws) return;
      self.ws = null;
      self.acked = false;
      clearTimeout(self.timers.ping);
      clearTimeout(self.timers.pong);
      if (!self.alive()) return;
      if (event.code === 4403 || event.code === 4401) {
        authFailed("The token is no longer accepted.");
        return;
      }
      self.scheduleReconnect("The live connection was lost.");
    };
    ws.onerror = function () { /* onclose follows and decides */ };
  };

  Session.prototype.onFrame = function (ws, msg) {
    var self = this;
    switch (msg.type) {
      case "connection_ack":
        self.acked = true;
        self.attempt = 0;
        setConnection("live", "Live: updates appear as they happen.");
        Object.keys(self.subs).forEach(function (id) { self.sendSubscribe(id); });
        if (self.everConnected) {
          // Whatever changed while we were away: read it again.
          self.reload().catch(function (err) {
            if (err instanceof AuthError) authFailed(err.message);
          });
        } else {
          self.subscribeAll();
        }
        self.everConnected = true;
        self.keepAlive(ws);
        break;
      case "ping":
        ws.send(JSON.stringify({ type: "pong" }));
        break;
      case "pong":
        clearTimeout(self.timers.pong);
        break;
      case "next": {
        var sub = self.subs[msg.id];
        if (sub && msg.payload) {
          if (msg.payload.errors && msg.payload.errors.length && !msg.payload.data) {
            if (sub.error) sub.error(msg.payload.errors);
          } else if (msg.payload.data) {
            sub.next(msg.payload.data);
          }
        }
        break;
      }
      case "error": {
        var failed = self.subs[msg.id];
        delete self.subs[msg.id];
        if (failed && failed.error) failed.error(msg.payload || []);
        break;
      }
      case "complete": {
        var done = self.subs[msg.id];
        delete self.subs[msg.id];
        if (done && done.complete) done.complete();
        break;
      }
      default:
        break;
    }
  };

  Session.prototype.keepAlive = function (ws) {
    var self = this;
    self.setTimer("ping", PING_EVERY_MS, function () {
      if (self.ws !== ws || ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ type: "ping" }));
      // No pong in time: the connection is dead without the browser knowing; start over.
      self.setTimer("pong", PONG_WITHIN_MS, function () {
        if (self.ws === ws) ws.close(4499, "no pong");
      });
      self.keepAlive(ws);
    });
  };

  Session.prototype.scheduleReconnect = function (why) {
    var self = this;
    var delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * Math.pow(2, self.attempt));
    delay = Math.round(delay * (0.8 + Math.random() * 0.4));
    self.attempt += 1;
    var until = Date.now() + delay;
    var tick = function () {
      var left = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      setConnection("offline", why + " Reconnecting in " + left + " s…", true);
      if (left > 0) self.setTimer("countdown", 1000, tick);
    };
    tick();
    self.setTimer("reconnect", delay, function () { self.reconnect(); });
  };

  Session.prototype.reconnect = function () {
    var self = this;
    clearTimeout(self.timers.reconnect);
    clearTimeout(self.timers.countdown);
    setConnection("connecting", "Reconnecting…");
    if (!self.everConnected && !self.loaded) {
      // The first load never worked: try it again before the websocket.
      self.request(SNAPSHOT_QUERY).then(function (data) {
        if (!self.alive()) return;
        self.loaded = true;
        showDashboard(data);
        self.applySnapshot(data);
        self.openSocket();
      }, function (err) {
        if (!self.alive()) return;
        if (err instanceof AuthError) authFailed(err.message);
        else self.scheduleReconnect(err.message);
      });
      return;
    }
    self.openSocket();
  };

  Session.prototype.subscribe = function (query, variables, handlers) {
    this.opSeq += 1;
    var id = String(this.opSeq);
    this.subs[id] = {
      payload: { query: query, variables: variables || {} },
      next: handlers.next, error: handlers.error, complete: handlers.complete,
    };
    if (this.acked) this.sendSubscribe(id);
    return id;
  };

  Session.prototype.sendSubscribe = function (id) {
    var sub = this.subs[id];
    if (sub && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ id: id, type: "subscribe", payload: sub.payload }));
    }
  };

  Session.prototype.unsubscribe = function (id) {
    if (!this.subs[id]) return;
    delete this.subs[id];
    if (this.acked && this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ id: id, type: "complete" }));
    }
  };

  Session.prototype.subscribeAll = function () {
    var self = this;
    self.subscribe(MESSAGES_SUBSCRIPTION, {}, {
      next: function (data) { self.onStatusChange(data.messageStatusChanged); },
      error: function () { setConnection("offline", "Live message updates stopped.", true); },
    });
    self.subscribe(ANSWERS_SUBSCRIPTION, {}, {
      next: function (data) { self.onAnswer(data.interviewResponseChanged); },
    });
    self.followBulks();
  };

  // A progress subscription for each bulk being sent; scheduled ones start moving with
  // their messages' status changes (which refresh the list).
  Session.prototype.followBulks = function () {
    var self = this;
    if (!self.everConnected && !self.acked) return;
    Object.keys(self.bulks).forEach(function (id) {
      var bulk = self.bulks[id];
      if (bulk.state !== "RUNNING" || self.bulkSubs[id]) return;
      self.bulkSubs[id] = self.subscribe(PROGRESS_SUBSCRIPTION, { id: id }, {
        next: function (data) { self.onBulk(data.bulkOperationProgress); },
        error: function () { delete self.bulkSubs[id]; },
        complete: function () { delete self.bulkSubs[id]; self.refreshSoon(); },
      });
    });
  };

  // ---------------------------------------------------------------- live events

  Session.prototype.onStatusChange = function (change) {
    if (!change || !change.message) return;
    var m = change.message;
    var known = this.messages[m.id];
    var bulkId = m.bulkOperation && m.bulkOperation.id;
    if (PROBLEM[m.status] || m.status === "SCHEDULED" || known) {
      var before = known ? known.status : null;
      // Keep the row's place in its list (a retried message stays where it was).
      if (known) m.listed = known.listed;
      this.messages[m.id] = m;
      if (before !== m.status) {
        announce(describe(m));
      }
      renderMessages(this);
    }
    if (bulkId && !this.bulks[bulkId]) this.refreshSoon(); // a new bulk operation
    this.refreshSoon(); // the counts
  };

  Session.prototype.onBulk = function (bulk) {
    if (!bulk) return;
    var old = this.bulks[bulk.id];
    this.bulks[bulk.id] = bulk;
    renderBulks(this);
    if (FINAL_BULK[bulk.state] && (!old || old.state !== bulk.state)) {
      announce((BULK_KIND[bulk.kind] || "Bulk") + ": " + BULK_STATE[bulk.state] + ", " +
               bulk.sent + " sent, " + bulk.failed + " failed of " + bulk.total + ".");
    }
  };

  Session.prototype.onAnswer = function (answer) {
    if (!answer || !answer.interview) return;
    this.answers = [answer].concat(this.answers.filter(function (a) {
      return a.interview.id !== answer.interview.id;
    })).slice(0, 10);
    renderAnswers(this);
    announce(candidateOfAnswer(answer) + " answered " + (RESPONSE_LABEL[answer.response] ||
             answer.response) + " to " + answer.interview.title + ".");
  };

  // ---------------------------------------------------------------- buttons

  Session.prototype.act = function (button, rowError, mutation, id, pick, after) {
    var self = this;
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    button.classList.add("busy");
    rowError.hidden = true;
    rowError.textContent = "";
    self.request(mutation, { id: id }).then(function (data) {
      var payload = pick(data);
      if (payload.errors && payload.errors.length) {
        throw new Error(payload.errors.map(function (e) { return e.message; }).join(" "));
      }
      after(payload);
    }).catch(function (err) {
      if (!self.alive()) return;
      if (err instanceof AuthError) { authFailed(err.message); return; }
      if (!button.isConnected) return;
      button.removeAttribute("aria-disabled");
      button.classList.remove("busy");
      rowError.textContent = err.message || "That did not work.";
      rowError.hidden = false;
    });
  };

  Session.prototype.retry = function (message, button, rowError) {
    var self = this;
    self.act(button, rowError, RETRY_MUTATION, message.id,
             function (d) { return d.retryMessage; }, function (payload) {
      if (!self.alive()) return;
      var m = payload.message;
      var current = self.messages[m.id];
      // A status event may already have moved it further than QUEUED.
      if (!current || PROBLEM[current.status]) {
        m.listed = current && current.listed;
        self.messages[m.id] = m;
      }
      announce("Retrying the message to " + candidateName(m) + ".");
      renderMessages(self);
      self.refreshSoon();
    });
  };

  Session.prototype.cancelMessage = function (message, button, rowError) {
    var self = this;
    self.act(button, rowError, CANCEL_MESSAGE_MUTATION, message.id,
             function (d) { return d.cancelScheduledMessage; }, function (payload) {
      if (!self.alive()) return;
      self.messages[payload.message.id] = payload.message;
      announce("Cancelled the message to " + candidateName(payload.message) + ".");
      renderMessages(self);
      self.refreshSoon();
    });
  };

  Session.prototype.cancelBulk = function (bulk, button, rowError) {
    var self = this;
    self.act(button, rowError, CANCEL_BULK_MUTATION, bulk.id,
             function (d) { return d.cancelBulkOperation; }, function (payload) {
      if (!self.alive()) return;
      self.onBulk(payload.bulkOperation);
      announce("Cancelled the scheduled " + (BULK_KIND[payload.bulkOperation.kind] ||
               "bulk operation").toLowerCase() + ".");
      self.refreshSoon();
    });
  };

  // ---------------------------------------------------------------- views

  var view = { dashboard: null };

  function clearRoot() {
    while (root.firstChild) root.removeChild(root.firstChild);
    view = { dashboard: null };
  }

  function candidateName(m) {
    if (!m.candidate) return "a candidate";
    return m.candidate.fullName || m.candidate.email || "a candidate";
  }

  function candidateOfAnswer(a) {
    var app = a.interview && a.interview.application;
    return (app && app.candidate && app.candidate.fullName) || "A candidate";
  }

  function describe(m) {
    var subject = m.subject ? "“" + m.subject + "”" : "The message";
    var text = subject + " to " + candidateName(m) + ": " + (STATUS_LABEL[m.status] || m.status);
    if (PROBLEM[m.status] && m.error) text += ". " + m.error;
    return text + ".";
  }

  function announce(text) {
    var region = document.getElementById("announcer");
    if (!region) return;
    // Replacing the text node makes screen readers read the new message.
    region.textContent = "";
    setTimeout(function () { region.textContent = text; }, 50);
  }

  function setConnection(state, text, alert) {
    var el = document.getElementById("connection");
    if (!el) return;
    el.setAttribute("data-state", state);
    el.textContent = text;
    el.setAttribute("role", alert ? "alert" : "status");
  }

  function showSignIn(message) {
    clearRoot();
    document.title = "Sign in · Outbox · recruitmail";
    var errorId = "signin-error";
    var input = h("input", {
      id: "token", name: "token", type: "password", autocomplete: "off",
      spellcheck: "false", required: true, "aria-describedby": "token-help " + errorId,
      "aria-invalid": message ? "true" : null,
    });
    var error = h("p", { id: errorId, "class": "error", role: "alert", text: message || "" });
    error.hidden = !message;
    var form = h("form", { id: "signin", "class": "signin card", novalidate: true,
                           "aria-labelledby": "signin-title" }, [
      h("h1", { id: "signin-title", text: "Outbox" }),
      h("p", { text: "Watch what is sending, what failed and why, and retry with one click." }),
      h("label", { "for": "token", text: "API token" }),
      input,
      h("p", { id: "token-help", "class": "help",
               text: "Kept in this browser tab only, until you sign out or close it." }),
      error,
      h("button", { type: "submit", "class": "primary", text: "Sign in" }),
    ]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var token = input.value.trim().replace(/^bearer\s+/i, "");
      if (!token) {
        error.textContent = "Paste an API token first.";
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
        input.focus();
        return;
      }
      signIn(token);
    });
    root.appendChild(h("main", { id: "main", "class": "signin-page" }, [form]));
    input.focus();
  }

  function showDashboard(data) {
    clearRoot();
    document.title = "Outbox · recruitmail";
    var title = h("h1", { id: "title", tabindex: "-1", text: "Outbox" });
    var signOutButton = h("button", { type: "button", id: "signout", text: "Sign out",
                                      on: { click: signOut } });
    var header = h("header", { "class": "bar" }, [
      h("div", { "class": "brand" }, [title, h("p", { id: "who", "class": "who" })]),
      h("p", { id: "connection", "class": "connection", role: "status",
               "data-state": "connecting", text: "Connecting…" }),
      signOutButton,
    ]);
    function section(id, heading, extra, list) {
      return h("section", { id: id, "aria-labelledby": id + "-h" }, [
        h("h2", { id: id + "-h", text: heading }),
      ].concat(extra).concat([list]));
    }
    var main = h("main", { id: "main", "class": "grid" }, [
      section("counts", "Messages by status", [],
              h("ul", { id: "counts-list", "class": "counts" })),
      section("bulks", "Bulk operations", [h("p", { id: "bulks-empty", "class": "empty",
                                                   text: "No bulk operations yet." })],
              h("ul", { id: "bulks-list", "class": "cards" })),
      section("problems", "Failed and bounced", [
        h("p", { id: "problems-empty", "class": "empty", text: "Nothing failed." }),
        h("p", { id: "problems-more", "class": "help", hidden: true })],
        h("ul", { id: "problems-list", "class": "cards" })),
      section("scheduled", "Scheduled", [
        h("p", { id: "scheduled-empty", "class": "empty", text: "Nothing scheduled." }),
        h("p", { id: "scheduled-more", "class": "help", hidden: true })],
        h("ul", { id: "scheduled-list", "class": "cards" })),
      section("answers", "Calendar answers", [
        h("p", { id: "answers-empty", "class": "empty", text: "No answers yet." })],
        h("ul", { id: "answers-list", "class": "cards" })),
    ]);
    var footer = h("footer", { "class": "foot" }, [
      h("p", { text: "Times are shown in " + zoneName + "." })]);
    var announcer = h("div", { id: "announcer", "class": "sr-only", "aria-live": "polite",
                               "aria-atomic": "true" });
    root.appendChild(header);
    root.appendChild(main);
    root.appendChild(footer);
    root.appendChild(announcer);
    view.dashboard = main;
    if (data) fillWho(data);
    title.focus();
  }

  function fillWho(data) {
    var who = document.getElementById("who");
    if (who && data && data.company) {
      who.textContent = data.company.name + " · signed in as " + data.viewer.name;
    }
  }

  function setEmpty(id, empty) {
    var el = document.getElementById(id);
    if (el) el.hidden = !empty;
  }

  function renderCounts(s) {
    var list = document.getElementById("counts-list");
    if (!list) return;
    COUNTED.forEach(function (status) {
      var count = s.counts[status] || 0;
      var item = list.querySelector('[data-count-status="' + status + '"]');
      if (!item) {
        item = h("li", { "data-count-status": status, "class": "count status-" + status }, [
          h("span", { "class": "count-number" }),
          h("span", { "class": "count-label", text: STATUS_LABEL[status] }),
        ]);
        list.appendChild(item);
      }
      item.setAttribute("data-count", String(count));
      item.querySelector(".count-number").textContent = count.toLocaleString();
    });
  }

  // Rows are kept and updated in place, so focus and screen-reader position survive.
  function syncList(list, items, keyAttr, build, update) {
    var existing = {};
    Array.prototype.forEach.call(list.children, function (el) {
      existing[el.getAttribute(keyAttr)] = el;
    });
    var keep = {};
    items.forEach(function (item, index) {
      var el = existing[item.id];
      if (!el) el = build(item);
      update(el, item);
      keep[item.id] = true;
      if (list.children[index] !== el) list.insertBefore(el, list.children[index] || null);
    });
    Object.keys(existing).forEach(function (key) {
      if (keep[key]) return;
      var el = existing[key];
      var hadFocus = el.contains(document.activeElement);
      list.removeChild(el);
      if (hadFocus) focusSection(list);
    });
  }

  function focusSection(list) {
    var heading = list.parentNode && list.parentNode.querySelector("h2");
    if (heading) { heading.setAttribute("tabindex", "-1"); heading.focus(); }
  }

  function renderBulks(s) {
    var list = document.getElementById("bulks-list");
    if (!list) return;
    var items = Object.keys(s.bulks).map(function (id) { return s.bulks[id]; });
    items.sort(function (a, b) {
      // Running and scheduled first, then the newest.
      var x = FINAL_BULK[a.state] ? 1 : 0, y = FINAL_BULK[b.state] ? 1 : 0;
      return x !== y ? x - y : byNewest("createdAt")(a, b);
    });
    syncList(list, items, "data-bulk-operation-id", buildBulk, updateBulk);
    setEmpty("bulks-empty", items.length === 0);
  }

  function buildBulk(bulk) {
    var titleId = nextId("bulk-title");
    var errorId = nextId("bulk-error");
    var li = h("li", { "data-bulk-operation-id": bulk.id, "class": "card bulk",
                       "aria-labelledby": titleId }, [
      h("div", { "class": "row-head" }, [
        h("h3", { id: titleId, "class": "bulk-title" }),
        h("span", { "class": "badge bulk-state" }),
      ]),
      h("p", { "class": "meta bulk-meta" }),
      h("div", { "class": "meter", role: "progressbar", "aria-valuemin": "0",
                 "aria-labelledby": titleId }, [
        h("span", { "class": "bar-sent" }), h("span", { "class": "bar-failed" })]),
      h("p", { "class": "bulk-figures" }),
      h("div", { "class": "actions" }),
      h("p", { id: errorId, "class": "error", role: "alert", hidden: true }),
    ]);
    return li;
  }

  function updateBulk(li, bulk) {
    li.setAttribute("data-state", bulk.state);
    li.setAttribute("data-sent", String(bulk.sent));
    li.setAttribute("data-failed", String(bulk.failed));
    li.setAttribute("data-total", String(bulk.total));
    li.querySelector(".bulk-title").textContent =
      (BULK_KIND[bulk.kind] || bulk.kind) + " to " + bulk.total + " candidate" +
      (bulk.total === 1 ? "" : "s");
    var badge = li.querySelector(".bulk-state");
    badge.textContent = BULK_STATE[bulk.state] || bulk.state;
    badge.className = "badge bulk-state state-" + bulk.state;
    var meta = li.querySelector(".bulk-meta");
    meta.textContent = "";
    meta.appendChild(document.createTextNode("Started by " +
      ((bulk.createdBy && bulk.createdBy.name) || "someone") + ", "));
    meta.appendChild(timeEl(bulk.createdAt));
    if (bulk.scheduledAt && bulk.state === "SCHEDULED") {
      meta.appendChild(document.createTextNode("; sends "));
      meta.appendChild(timeEl(bulk.scheduledAt));
    }
    var total = Math.max(bulk.total, 1);
    var bar = li.querySelector(".meter");
    var summary = bulk.sent + " sent, " + bulk.failed + " failed of " + bulk.total;
    bar.setAttribute("aria-valuemax", String(bulk.total));
    bar.setAttribute("aria-valuenow", String(bulk.sent + bulk.failed));
    bar.setAttribute("aria-valuetext", summary);
    li.querySelector(".bar-sent").style.width = (100 * bulk.sent / total) + "%";
    li.querySelector(".bar-failed").style.width = (100 * bulk.failed / total) + "%";
    li.querySelector(".bulk-figures").textContent = summary +
      (bulk.queued && !FINAL_BULK[bulk.state] ? " · " + bulk.queued + " waiting" : "");
    var actions = li.querySelector(".actions");
    var cancel = actions.querySelector("button");
    if (bulk.state === "SCHEDULED" && !cancel) {
      var error = li.querySelector(".error");
      cancel = h("button", { type: "button", "class": "danger", text: "Cancel",
                             "aria-describedby": li.getAttribute("aria-labelledby") });
      cancel.addEventListener("click", function () {
        var current = session && session.bulks[bulk.id];
        if (session && current) session.cancelBulk(current, cancel, error);
      });
      actions.appendChild(cancel);
    } else if (bulk.state !== "SCHEDULED" && cancel) {
      var hadFocus = cancel === document.activeElement;
      actions.removeChild(cancel);
      if (hadFocus) { li.setAttribute("tabindex", "-1"); li.focus(); }
    }
  }

  function renderMessages(s) {
    var problems = [], scheduled = [];
    Object.keys(s.messages).forEach(function (id) {
      var m = s.messages[id];
      if (!m.listed) m.listed = m.status === "SCHEDULED" ? "scheduled" : "problems";
      if (m.listed === "scheduled" && PROBLEM[m.status]) m.listed = "problems";
      (m.listed === "scheduled" ? scheduled : problems).push(m);
    });
    problems.sort(byNewest("createdAt"));
    scheduled.sort(function (a, b) {
      var x = a.scheduledAt || "", y = b.scheduledAt || "";
      return x < y ? -1 : x > y ? 1 : 0;
    });
    var pl = document.getElementById("problems-list");
    var sl = document.getElementById("scheduled-list");
    if (!pl || !sl) return;
    syncList(pl, problems, "data-message-id", buildMessage, updateMessage);
    syncList(sl, scheduled, "data-message-id", buildMessage, updateMessage);
    var stillProblems = problems.filter(function (m) { return PROBLEM[m.status]; }).length;
    setEmpty("problems-empty", problems.length === 0);
    setEmpty("scheduled-empty", scheduled.length === 0);
    // The counts say how many there are; the lists hold the newest LIST_SIZE of each.
    more("problems-more", (s.counts.FAILED || 0) + (s.counts.BOUNCED || 0), stillProblems,
         "failed or bounced messages");
    more("scheduled-more", s.counts.SCHEDULED || 0,
         scheduled.filter(function (m) { return m.status === "SCHEDULED"; }).length,
         "scheduled messages");
  }

  function more(id, total, shown, what) {
    var el = document.getElementById(id);
    if (!el) return;
    el.hidden = total <= shown;
    el.textContent = "Showing the newest " + shown + " of " + total + " " + what + ".";
  }

  function buildMessage(m) {
    var titleId = nextId("msg-title");
    return h("li", { "data-message-id": m.id, "class": "card message",
                     "aria-labelledby": titleId, tabindex: "-1" }, [
      h("div", { "class": "row-head" }, [
        h("h3", { id: titleId, "class": "msg-subject" }),
        h("span", { "class": "badge msg-status" }),
      ]),
      h("p", { "class": "meta msg-to" }),
      h("p", { "class": "reason" }),
      h("p", { "class": "meta msg-when" }),
      h("div", { "class": "actions" }),
      h("p", { "class": "error", role: "alert", hidden: true }),
    ]);
  }

  function updateMessage(li, m) {
    li.setAttribute("data-status", m.status);
    li.querySelector(".msg-subject").textContent = m.subject || "(no subject)";
    var badge = li.querySelector(".msg-status");
    badge.textContent = STATUS_LABEL[m.status] || m.status;
    badge.className = "badge msg-status status-" + m.status;
    var to = li.querySelector(".msg-to");
    var email = (m.candidate && m.candidate.email) || (m.to && m.to[0]) || "";
    to.textContent = "To " + candidateName(m) +
      (email && email !== candidateName(m) ? " <" + email + ">" : "");
    var reason = li.querySelector(".reason");
    if (PROBLEM[m.status]) {
      reason.hidden = false;
      reason.textContent = (m.status === "BOUNCED" ? "Bounced: " : "Failed: ") +
        (m.error || "no reason was recorded.");
    } else if (m.listed === "problems") {
      reason.hidden = false;
      reason.textContent = m.status === "SENT" ? "Sent after the retry."
        : m.status === "CANCELLED" ? "Cancelled." : "Retrying: " + STATUS_LABEL[m.status] + "…";
    } else {
      reason.hidden = true;
    }
    var when = li.querySelector(".msg-when");
    when.textContent = "";
    if (m.status === "SCHEDULED" && m.scheduledAt) {
      when.appendChild(document.createTextNode("Sends "));
      when.appendChild(timeEl(m.scheduledAt));
    } else if (m.status === "SENT" && m.sentAt) {
      when.appendChild(document.createTextNode("Sent "));
      when.appendChild(timeEl(m.sentAt));
    } else {
      when.appendChild(document.createTextNode("Created "));
      when.appendChild(timeEl(m.createdAt));
      if (m.attempts) {
        when.appendChild(document.createTextNode(" · " + m.attempts + " attempt" +
                                                 (m.attempts === 1 ? "" : "s")));
      }
    }
    var actions = li.querySelector(".actions");
    var error = li.querySelector(".error");
    var want = PROBLEM[m.status] ? "Retry" : m.status === "SCHEDULED" ? "Cancel" : null;
    var button = actions.querySelector("button");
    if (button && button.textContent !== want) {
      var hadFocus = button === document.activeElement;
      actions.removeChild(button);
      button = null;
      if (hadFocus) li.focus(); // the row keeps the user's place
    }
    if (want && !button) {
      button = h("button", { type: "button", "class": want === "Retry" ? "primary" : "danger",
                             text: want, "aria-describedby": li.getAttribute("aria-labelledby") });
      button.addEventListener("click", function () {
        var current = session && session.messages[m.id];
        if (!session || !current) return;
        if (want === "Retry") session.retry(current, button, error);
        else session.cancelMessage(current, button, error);
      });
      actions.appendChild(button);
    }
  }

  function renderAnswers(s) {
    var list = document.getElementById("answers-list");
    if (!list) return;
    var items = s.answers.map(function (a) {
      return { id: a.interview.id, answer: a };
    });
    syncList(list, items, "data-interview-id", function (item) {
      return h("li", { "data-interview-id": item.id, "class": "card answer" }, [
        h("div", { "class": "row-head" }, [
          h("h3", { "class": "answer-title" }), h("span", { "class": "badge answer-response" })]),
        h("p", { "class": "meta answer-when" }),
        h("p", { "class": "answer-comment" }),
      ]);
    }, function (li, item) {
      var a = item.answer;
      li.setAttribute("data-response", a.response);
      li.querySelector(".answer-title").textContent =
        candidateOfAnswer(a) + " · " + a.interview.title;
      var badge = li.querySelector(".answer-response");
      badge.textContent = RESPONSE_LABEL[a.response] || a.response;
      badge.className = "badge answer-response response-" + a.response;
      var when = li.querySelector(".answer-when");
      when.textContent = "";
      when.appendChild(document.createTextNode("Interview "));
      when.appendChild(timeEl(a.interview.startsAt));
      when.appendChild(document.createTextNode(" · answered "));
      when.appendChild(timeEl(a.at));
      var comment = li.querySelector(".answer-comment");
      comment.hidden = !a.comment;
      comment.textContent = a.comment ? "“" + a.comment + "”" : "";
    });
    setEmpty("answers-empty", items.length === 0);
  }

  // ---------------------------------------------------------------- sign in and out

  function signIn(token) {
    if (session) session.stop();
    try { window.sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode */ }
    session = new Session(token);
    session.begin();
  }

  function authFailed(message) {
    if (session) session.stop();
    session = null;
    try { window.sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
    showSignIn(message + " Check the token (recruitmail admin create-token makes a new " +
               "one) and sign in again.");
  }

  function signOut() {
    if (session) session.stop();
    session = null;
    try { window.sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
    showSignIn(null);
  }

  function tokenFromFragment() {
    if (!window.location.hash || window.location.hash.length < 2) return null;
    var params = new URLSearchParams(window.location.hash.slice(1));
    var token = params.get("token");
    if (token === null) return null;
    // Out of the address bar (and the history) before anything else happens.
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    return token.trim() || null;
  }

  window.addEventListener("online", function () {
    if (session && session.alive() && !session.ws) session.reconnect();
  });

  var handed = tokenFromFragment();
  var stored = null;
  try { stored = window.sessionStorage.getItem(TOKEN_KEY); } catch (e) { stored = null; }
  if (handed) signIn(handed);
  else if (stored) signIn(stored);
  else showSignIn(null);
})();
