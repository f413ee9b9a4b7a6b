server {
    listen 80;
    server_name a.example.com;
    limit_req zone=site burst=5;
    location / { proxy_pass http://127.0.0.1:3001; }
}
