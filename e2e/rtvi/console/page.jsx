// The voice-ui-kit test page of e2e/rtvi: Pipecat's published console
// template (ConsoleTemplate, @pipecat-ai/voice-ui-kit) as an app would
// render it, pointed at voiced's /start with the WebSocket transport. The
// Go test reads what the page shows; window.consoleState only records the
// client's events, to say what happened when it fails.
import { createRoot } from "react-dom/client";
import { ConsoleTemplate, FullScreenContainer } from "@pipecat-ai/voice-ui-kit";
import { WavMediaManager } from "@pipecat-ai/websocket-transport";
import "@pipecat-ai/voice-ui-kit/styles";

const params = new URLSearchParams(location.search);
const state = { events: [], errors: [], finals: [], outputs: [] };
window.consoleState = state;

function App() {
  return (
    <FullScreenContainer>
        <ConsoleTemplate
          transportType="websocket"
          // The default media manager loads a script from Daily's CDN;
          // the WAV one is bundled (16 kHz, as the transport labels it).
          transportOptions={{ mediaManager: new WavMediaManager(512, 16000) }}
          startBotParams={{
            endpoint: params.get("endpoint"),
            requestData: { transport: "websocket", body: { user: "console" } },
          }}
          titleText="voiced"
          noUserVideo
          noScreenControl
          theme="light"
          noThemeSwitch
          onClient={(client) => {
            window.consoleClient = client;
            for (const ev of ["botReady", "userTranscript", "botOutput", "botStartedSpeaking", "botStoppedSpeaking",
              "botLlmStarted", "botLlmStopped", "disconnected"]) {
              client.on(ev, () => state.events.push(ev));
            }
            client.on("userTranscript", (d) => { if (d.final) state.finals.push(d.text); });
            client.on("botStoppedSpeaking", () => { state.stoppedAt = performance.now(); });
            client.on("botOutput", (d) => state.outputs.push(d));
            client.on("botLlmStopped", () => { state.llmStoppedAt = performance.now(); });
            client.on("error", (m) => state.errors.push(m && m.data));
          }}
        />
    </FullScreenContainer>
  );
}

createRoot(document.getElementById("root")).render(<App />);
